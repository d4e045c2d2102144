//! `cdnctl nodes list|show|delete`: the node listing (also as `--watch`
//! rows), the one-node description, and forgetting decommissioned nodes.

use std::collections::BTreeMap;
use std::process::ExitCode;

use cdn_proto::v1::{
    DeleteNodeRequest, GetNodeRequest, LabelRequirement, ListNodesRequest, NodeInfo, NodeStatus,
};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::output::{self, Cell, Format, Human, Kind, Listing, Row};
use crate::{CliError, Context};

/// Verbs of `cdnctl nodes`.
#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// List nodes with their state, address, labels and figures.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show everything the master knows about one node.
    #[command(visible_alias = "get")]
    Show(ShowArgs),
    /// Forget nodes that are gone for good (admin).
    ///
    /// Removes them from the master's registry and store, revokes their
    /// certificates so their agents cannot come back without enrolling
    /// again with a join token, and clears their metrics (and the offline
    /// alert with them). An online or degraded node is refused unless
    /// --force, which disconnects its agent. Each deletion is audited;
    /// exits 1 if any node was refused (the others are still deleted).
    ///
    /// Example: `cdnctl nodes delete agent-7`, or
    /// `cdnctl nodes list --status offline -o name | xargs cdnctl nodes delete`
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),
}

/// Arguments of `nodes list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = output::formats(NodeRow::FORMATS))]
    pub output: Format,
    /// Only nodes in this state.
    #[arg(long, value_parser = status_words())]
    pub status: Option<NodeStatus>,
    /// Only nodes whose labels match, in kubectl's grammar: `k=v`, `k!=v`,
    /// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`; commas and repeated flags
    /// mean all of them.
    #[arg(short = 'l', long, value_name = "SELECTOR", value_parser = crate::selector::parse)]
    pub selector: Vec<Vec<LabelRequirement>>,
    /// After the list, print a row whenever a node changes state (as
    /// `kubectl get -w`), until interrupted.
    #[arg(short, long)]
    pub watch: bool,
    /// How often --watch asks the master.
    #[arg(long, default_value = "1s", value_parser = cdn_common::duration::parse_flag, value_name = "DURATION", requires = "watch")]
    pub interval: std::time::Duration,
}

/// Arguments of `nodes show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Node name (or `node/NAME`).
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete_nodes))]
    pub name: String,
    /// Output format (`table` and `wide` print a key: value list).
    #[arg(short, long, default_value = "table", value_parser = output::formats(NodeDetail::FORMATS))]
    pub output: Format,
}

/// Arguments of `nodes delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Node names; `node/NAME`, as `-o name` prints them, works too.
    #[arg(required = true, value_name = "NAME", add = clap_complete::engine::ArgValueCompleter::new(crate::complete_nodes))]
    pub names: Vec<String>,
    /// Delete online and degraded nodes too: their agents are disconnected
    /// (and told why) and cannot register again with their certificate.
    #[arg(long)]
    pub force: bool,
}

/// A node name as given: `agent-1` or `node/agent-1`.
fn node_name(given: &str) -> &str {
    given.strip_prefix("node/").unwrap_or(given)
}

/// `--status`: a node state in the words the listings print.
fn status_words() -> impl clap::builder::TypedValueParser<Value = NodeStatus> {
    use clap::builder::TypedValueParser;
    let states = [
        NodeStatus::Online,
        NodeStatus::Degraded,
        NodeStatus::Offline,
    ];
    clap::builder::PossibleValuesParser::new(states.map(NodeStatus::word))
        .map(|word: String| NodeStatus::from_word(&word).unwrap_or_default())
}

/// Runs a `nodes` verb.
pub async fn run(ctx: &Context, cmd: NodesCommand) -> Result<ExitCode, CliError> {
    match cmd {
        NodesCommand::List(args) => list(ctx, args).await,
        NodesCommand::Show(args) => show(ctx, args).await,
        NodesCommand::Delete(args) => delete(ctx, args).await,
    }
}

/// One node as scripts see it (`-o json|yaml`).
#[derive(Debug, Serialize)]
pub struct NodeRow {
    pub name: String,
    #[serde(serialize_with = "output::as_word")]
    pub status: NodeStatus,
    pub status_reason: String,
    pub address: String,
    pub addresses: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, or null if never seen.
    pub last_seen: Option<String>,
    pub config_version: String,
    pub agent_version: String,
    pub hostname: String,
    pub cpu_percent: Option<f64>,
    pub cpu_count: Option<u32>,
    pub mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub disk_used_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    pub load: Option<[f64; 3]>,
    pub uptime_seconds: Option<u64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    pub session_id: u64,
    pub stream_open: bool,
    pub connected_since: Option<String>,
    pub first_seen: Option<String>,
    pub clock_skew_ms: i64,
    pub heartbeat_rtt_p50_us: Option<u64>,
    pub heartbeat_rtt_p99_us: Option<u64>,
    pub reconnects: Option<u64>,
    /// The node's health command: null when it has none.
    pub health: Option<HealthRow>,
    #[serde(skip)]
    last_seen_ms: i64,
}

/// The last result of a node's health command.
#[derive(Debug, Serialize)]
pub struct HealthRow {
    /// `ok` or `failing`.
    pub state: &'static str,
    /// Why it fails; empty when ok.
    pub detail: String,
    /// The config version applied when it ran ("" for none).
    pub config_version: String,
    /// RFC 3339, the agent's clock.
    pub checked: Option<String>,
}

impl HealthRow {
    fn from_wire(h: cdn_proto::v1::HealthCheck) -> Option<Self> {
        use cdn_proto::v1::HealthState;
        let state = match h.state() {
            HealthState::Ok => "ok",
            HealthState::Failing => "failing",
            HealthState::Unspecified => return None,
        };
        Some(Self {
            state,
            detail: h.detail,
            config_version: cdn_proto::Version::to_wire(cdn_proto::Version::new(h.config_version)),
            checked: output::rfc3339(h.checked_ms),
        })
    }
}

impl From<NodeInfo> for NodeRow {
    fn from(n: NodeInfo) -> Self {
        let sys = n.system;
        let link = n.link;
        let status = n.status();
        Self {
            address: n.addresses.first().cloned().unwrap_or_default(),
            addresses: n.addresses,
            labels: n.labels.into_iter().collect(),
            last_seen: output::rfc3339(n.last_seen_ms),
            last_seen_ms: n.last_seen_ms,
            config_version: cdn_proto::Version::to_wire(cdn_proto::Version::new(n.applied_version)),
            agent_version: n.agent_version,
            hostname: n.hostname,
            cpu_percent: sys.map(|s| (s.cpu_percent * 10.0).round() / 10.0),
            cpu_count: sys.map(|s| s.cpu_count),
            mem_used_bytes: sys.map(|s| s.mem_used_bytes),
            mem_total_bytes: sys.map(|s| s.mem_total_bytes),
            disk_used_bytes: sys.map(|s| s.disk_used_bytes),
            disk_total_bytes: sys.map(|s| s.disk_total_bytes),
            load: sys.map(|s| [s.load1, s.load5, s.load15]),
            uptime_seconds: sys.map(|s| s.uptime_seconds),
            net_rx_bytes: sys.map(|s| s.net_rx_bytes),
            net_tx_bytes: sys.map(|s| s.net_tx_bytes),
            session_id: n.session_id,
            stream_open: n.stream_open,
            connected_since: output::rfc3339(n.connected_since_ms),
            first_seen: output::rfc3339(n.first_seen_ms),
            clock_skew_ms: n.clock_skew_ms,
            heartbeat_rtt_p50_us: link.map(|l| l.heartbeat_rtt_p50_us),
            heartbeat_rtt_p99_us: link.map(|l| l.heartbeat_rtt_p99_us),
            reconnects: link.map(|l| l.reconnects),
            health: n.health.and_then(HealthRow::from_wire),
            status,
            name: n.name,
            status_reason: n.status_reason,
        }
    }
}

impl NodeRow {
    fn last_seen_age(&self, now_ms: i64) -> String {
        if self.last_seen_ms <= 0 {
            "never".into()
        } else {
            format!("{} ago", output::age(now_ms - self.last_seen_ms))
        }
    }

    fn labels_text(&self) -> String {
        if self.labels.is_empty() {
            return "-".into();
        }
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn cpu_text(&self) -> String {
        self.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%"))
    }

    fn mem_text(&self) -> String {
        match (self.mem_used_bytes, self.mem_total_bytes) {
            (Some(u), Some(t)) if t > 0 => {
                format!("{}/{}", output::bytes(u), output::bytes(t))
            }
            _ => "-".into(),
        }
    }

    fn disk_text(&self) -> String {
        match (self.disk_used_bytes, self.disk_total_bytes) {
            (Some(u), Some(t)) if t > 0 => {
                format!("{}/{}", output::bytes(u), output::bytes(t))
            }
            _ => "-".into(),
        }
    }

    fn load_text(&self) -> String {
        self.load.map_or("-".into(), |l| {
            format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
        })
    }

    /// `ok`, `failing`, or `-` without a health command.
    fn health_word(&self) -> &'static str {
        self.health.as_ref().map_or("-", |h| h.state)
    }

    /// `ok`, `failing: DETAIL`, or `none`, with the version it ran on.
    fn health_text(&self) -> String {
        let Some(h) = &self.health else {
            return "none (no config.health_command)".into();
        };
        let what = if h.detail.is_empty() {
            h.state.to_string()
        } else {
            format!("{}: {}", h.state, h.detail)
        };
        match (h.config_version.as_str(), &h.checked) {
            ("", Some(at)) => format!("{what} (checked {at})"),
            (v, Some(at)) => format!("{what} (config {v}, checked {at})"),
            _ => what,
        }
    }

    fn rtt_text(&self) -> String {
        match (self.heartbeat_rtt_p50_us, self.heartbeat_rtt_p99_us) {
            (Some(a), Some(b)) if b > 0 => format!("{:.1}/{:.1}ms", a as f64 / 1e3, b as f64 / 1e3),
            _ => "-".into(),
        }
    }
}

impl Row for NodeRow {
    const FORMATS: &'static [Kind] = Kind::ALL;
    const EMPTY: &'static str = "No nodes found.";
    /// STATUS is as wide as its widest word, so watch rows line up.
    const MIN_WIDTHS: &'static [usize] = &[0, "degraded".len()];

    fn columns(wide: bool) -> Vec<&'static str> {
        let mut columns = vec![
            "NAME",
            "STATUS",
            "ADDRESS",
            "LABELS",
            "LAST SEEN",
            "CPU",
            "MEMORY",
            "CONFIG",
            "AGENT",
        ];
        if wide {
            columns.extend([
                "HOSTNAME",
                "DISK",
                "LOAD",
                "SESSION",
                "STREAM",
                "HB RTT p50/p99",
                "HEALTH",
                "REASON",
            ]);
        }
        columns
    }

    fn cells(&self, wide: bool) -> Vec<Cell> {
        let mut cells = vec![
            Cell::new(&self.name),
            Cell::word(self.status),
            Cell::or_dash(&self.address),
            self.labels_text().into(),
            self.last_seen_age(output::now_ms()).into(),
            self.cpu_text().into(),
            self.mem_text().into(),
            Cell::or_dash(&self.config_version),
            Cell::or_dash(&self.agent_version),
        ];
        if wide {
            cells.extend([
                Cell::or_dash(&self.hostname),
                self.disk_text().into(),
                self.load_text().into(),
                Cell::new(self.session_id),
                Cell::new(if self.stream_open { "open" } else { "-" }),
                self.rtt_text().into(),
                Cell::new(self.health_word()),
                Cell::or_dash(&self.status_reason),
            ]);
        }
        cells
    }

    fn name(&self) -> String {
        format!("node/{}", self.name)
    }
}

async fn list(ctx: &Context, args: ListArgs) -> Result<ExitCode, CliError> {
    let selector = crate::selector::merge(&args.selector);
    let request = ListNodesRequest {
        status: args.status.unwrap_or_default().into(),
        selector: selector.legacy,
        label_selector: selector.requirements,
    };
    let fetch = || async {
        ctx.call(
            request.clone(),
            |mut c, r| async move { c.list_nodes(r).await },
        )
        .await
        .map(|r| r.nodes.into_iter().map(NodeRow::from).collect::<Vec<_>>())
    };
    let rows = fetch().await?;
    let mut printer = output::Printer::new(args.output);
    printer.print(&rows)?;
    if !args.watch {
        return Ok(ExitCode::SUCCESS);
    }
    // Watch: one row per change, as `kubectl get -w` prints them, under the
    // first table's header.
    let key = |r: &NodeRow| (r.status, r.session_id, r.address.clone());
    let mut seen: BTreeMap<String, _> = rows.iter().map(|r| (r.name.clone(), key(r))).collect();
    let mut tick = tokio::time::interval(args.interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            _ = tick.tick() => {}
        }
        let changed: Vec<NodeRow> = fetch()
            .await?
            .into_iter()
            .filter(|r| seen.get(&r.name) != Some(&key(r)))
            .collect();
        if changed.is_empty() {
            continue;
        }
        for r in &changed {
            seen.insert(r.name.clone(), key(r));
        }
        printer.print(&changed)?;
    }
}

/// `nodes show`: one node, as a `key: value` list in `table` and `wide`.
struct NodeDetail(NodeRow);

impl Listing for NodeDetail {
    const FORMATS: &'static [Kind] = Kind::ALL;

    fn data(&self) -> impl Serialize {
        &self.0
    }

    fn names(&self) -> Vec<String> {
        vec![self.0.name()]
    }

    fn human(&self, _wide: bool) -> Human {
        Human::Text(describe(&self.0))
    }
}

async fn show(ctx: &Context, args: ShowArgs) -> Result<ExitCode, CliError> {
    let request = GetNodeRequest {
        name: node_name(&args.name).to_string(),
    };
    let node = ctx
        .call(request, |mut c, r| async move { c.get_node(r).await })
        .await?;
    output::print(&NodeDetail(NodeRow::from(node)), args.output)?;
    Ok(ExitCode::SUCCESS)
}

/// Said when the master predates `DeleteNode`.
const CANNOT_DELETE: &str = "this master cannot delete nodes; upgrade masterd";

/// `nodes delete`: each node in turn, as kubectl deletes: a line on stdout
/// per node deleted, a line on stderr per node refused (the others are
/// still deleted); exit 1 if any was refused. A master that cannot be
/// reached stops it at once.
async fn delete(ctx: &Context, args: DeleteArgs) -> Result<ExitCode, CliError> {
    let mut all_ok = true;
    for given in &args.names {
        let name = node_name(given).to_string();
        let request = DeleteNodeRequest {
            name: name.clone(),
            force: args.force,
        };
        let result = ctx
            .call(request, |mut c, r| async move {
                c.delete_node(r).await.map_err(|s| match s.code() {
                    tonic::Code::Unimplemented => tonic::Status::unimplemented(CANNOT_DELETE),
                    _ => s,
                })
            })
            .await;
        match result {
            Ok(r) => {
                if r.was_connected {
                    output::print_diagnostic(&format!(
                        "cdnctl: {name} was {}; its agent was disconnected",
                        r.status().word()
                    ));
                }
                output::print_text(&format!("node \"{name}\" deleted"))?;
            }
            Err(e @ CliError::Master(_)) => {
                output::print_diagnostic(&format!("cdnctl: {e}"));
                all_ok = false;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(crate::exit::all_ok(all_ok))
}

/// `nodes show` as a key: value list.
fn describe(r: &NodeRow) -> String {
    let now = output::now_ms();
    let mut lines: Vec<(&str, String)> = vec![
        ("Name", r.name.clone()),
        ("Status", r.status.word().to_string()),
    ];
    if !r.status_reason.is_empty() {
        lines.push(("Reason", r.status_reason.clone()));
    }
    lines.push(("Health", r.health_text()));
    lines.extend([
        ("Addresses", output::dash(&r.addresses.join(", ")).into()),
        ("Hostname", output::dash(&r.hostname).into()),
        ("Labels", r.labels_text()),
        (
            "Last seen",
            format!(
                "{} ({})",
                r.last_seen.clone().unwrap_or_else(|| "never".into()),
                r.last_seen_age(now)
            ),
        ),
        (
            "First seen",
            r.first_seen.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "Connected since",
            r.connected_since.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Session", r.session_id.to_string()),
        (
            "Command stream",
            if r.stream_open {
                "open".into()
            } else {
                "closed".into()
            },
        ),
        ("Agent version", output::dash(&r.agent_version).into()),
        ("Config version", output::dash(&r.config_version).into()),
        (
            "CPU",
            match (r.cpu_percent, r.cpu_count) {
                (Some(p), Some(n)) => format!("{p:.1}% of {n} cores"),
                _ => "-".into(),
            },
        ),
        ("Memory", r.mem_text()),
        ("Disk", r.disk_text()),
        ("Load", r.load_text()),
        (
            "Uptime",
            r.uptime_seconds.map_or("-".into(), |s| {
                humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
            }),
        ),
        (
            "Network",
            match (r.net_rx_bytes, r.net_tx_bytes) {
                (Some(rx), Some(tx)) => {
                    format!("rx {} tx {}", output::bytes(rx), output::bytes(tx))
                }
                _ => "-".into(),
            },
        ),
        ("Heartbeat RTT", r.rtt_text()),
        (
            "Reconnects",
            r.reconnects.map_or("-".into(), |n| n.to_string()),
        ),
        ("Clock skew", format!("{} ms", r.clock_skew_ms)),
    ]);
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    lines
        .into_iter()
        .map(|(k, v)| format!("{:<width$} {v}", format!("{k}:")))
        .collect::<Vec<_>>()
        .join("\n")
}
