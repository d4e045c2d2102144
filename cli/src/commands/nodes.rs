//! `cdnctl nodes list|show`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use cdn_proto::v1::{GetNodeRequest, ListNodesRequest, NodeInfo, NodeStatus};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::output::{self, Format};
use crate::{CliError, Context};

/// Verbs of `cdnctl nodes`.
#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// List nodes with their state, address, labels and figures.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show everything the master knows about one node.
    Show(ShowArgs),
}

/// Arguments of `nodes list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Only nodes in this state.
    #[arg(long, value_enum)]
    pub status: Option<StatusFilter>,
    /// Only nodes whose labels match, `key=value[,key=value...]`; repeatable.
    #[arg(short = 'l', long, value_name = "K=V", value_parser = crate::selector::parse)]
    pub selector: Vec<Vec<(String, String)>>,
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
    /// Node name.
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete_nodes))]
    pub name: String,
    /// Output format (`table` and `wide` print a key: value list).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Node states to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFilter {
    Online,
    Degraded,
    Offline,
}

impl StatusFilter {
    fn wire(self) -> NodeStatus {
        match self {
            Self::Online => NodeStatus::Online,
            Self::Degraded => NodeStatus::Degraded,
            Self::Offline => NodeStatus::Offline,
        }
    }
}

/// Runs a `nodes` verb.
pub async fn run(ctx: &Context, cmd: NodesCommand) -> Result<ExitCode, CliError> {
    match cmd {
        NodesCommand::List(args) => list(ctx, args).await,
        NodesCommand::Show(args) => show(ctx, args).await,
    }
}

/// One node as scripts see it (`-o json|yaml`).
#[derive(Debug, Serialize)]
pub struct NodeRow {
    pub name: String,
    pub status: String,
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
    #[serde(skip)]
    last_seen_ms: i64,
}

impl From<NodeInfo> for NodeRow {
    fn from(n: NodeInfo) -> Self {
        let sys = n.system;
        let link = n.link;
        let status = n.status().word().to_string();
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

    fn rtt_text(&self) -> String {
        match (self.heartbeat_rtt_p50_us, self.heartbeat_rtt_p99_us) {
            (Some(a), Some(b)) if b > 0 => format!("{:.1}/{:.1}ms", a as f64 / 1e3, b as f64 / 1e3),
            _ => "-".into(),
        }
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

async fn list(ctx: &Context, args: ListArgs) -> Result<ExitCode, CliError> {
    let client = ctx.admin().await?;
    let request = ListNodesRequest {
        status: args
            .status
            .map_or(NodeStatus::Unspecified, StatusFilter::wire)
            .into(),
        selector: crate::selector::merge(&args.selector),
    };
    let fetch = || {
        let (mut client, request) = (client.clone(), request.clone());
        async move {
            client
                .list_nodes(request)
                .await
                .map(|r| {
                    r.into_inner()
                        .nodes
                        .into_iter()
                        .map(NodeRow::from)
                        .collect::<Vec<_>>()
                })
                .map_err(|s| ctx.call_error(&s))
        }
    };
    let rows = fetch().await?;
    let wide = args.output == Format::Wide;
    let mut widths = Vec::new();
    match args.output {
        Format::Json | Format::Yaml => output::print_data(&rows, args.output)?,
        Format::Table | Format::Wide => {
            widths = print_table(&rows, wide, &[])?;
        }
    }
    if !args.watch {
        return Ok(ExitCode::SUCCESS);
    }
    // Watch: one row per change, as `kubectl get -w` prints them.
    let key = |r: &NodeRow| (r.status.clone(), r.session_id, r.address.clone());
    let mut seen: std::collections::BTreeMap<String, _> =
        rows.iter().map(|r| (r.name.clone(), key(r))).collect();
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
        match args.output {
            Format::Json | Format::Yaml => output::print_data(&changed, args.output)?,
            Format::Table | Format::Wide => {
                // Rows line up under the first table's header.
                output::set_no_headers(true);
                let now = print_table(&changed, wide, &widths)?;
                widths = widths
                    .iter()
                    .zip(now.iter().chain(std::iter::repeat(&0)))
                    .map(|(a, b)| *a.max(b))
                    .collect();
            }
        }
    }
}

/// Prints the node table with columns at least `min_widths` wide; returns
/// the widths used.
fn print_table(rows: &[NodeRow], wide: bool, min_widths: &[u16]) -> Result<Vec<u16>, CliError> {
    let now = output::now_ms();
    let mut header = vec![
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
        header.extend([
            "HOSTNAME",
            "DISK",
            "LOAD",
            "SESSION",
            "STREAM",
            "HB RTT p50/p99",
            "REASON",
        ]);
    }
    let mut table = output::table(&header);
    // STATUS is as wide as its widest value, so watch rows line up.
    let pad = |i: usize, text: String| -> String {
        let mut w = min_widths.get(i).copied().unwrap_or(0) as usize;
        if i == 1 {
            w = w.max("degraded".len());
        }
        format!("{text:<w$}")
    };
    for r in rows {
        let mut texts = vec![
            r.name.clone(),
            r.status.clone(),
            or_dash(&r.address).to_string(),
            r.labels_text(),
            r.last_seen_age(now),
            r.cpu_text(),
            r.mem_text(),
            or_dash(&r.config_version).to_string(),
            or_dash(&r.agent_version).to_string(),
        ];
        if wide {
            texts.extend([
                or_dash(&r.hostname).to_string(),
                r.disk_text(),
                r.load.map_or("-".into(), |l| {
                    format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
                }),
                r.session_id.to_string(),
                if r.stream_open { "open" } else { "-" }.to_string(),
                r.rtt_text(),
                or_dash(&r.status_reason).to_string(),
            ]);
        }
        let cells: Vec<comfy_table::Cell> = texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let t = pad(i, t);
                if i == 1 {
                    output::state_cell(&t)
                } else {
                    comfy_table::Cell::new(t)
                }
            })
            .collect();
        table.add_row(cells);
    }
    if rows.is_empty() {
        output::print_text("No nodes found.")?;
        return Ok(min_widths.to_vec());
    }
    if !min_widths.is_empty() {
        // Watch rows: as wide as the first table's columns, never wrapped.
        table.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    }
    let widths = table.column_max_content_widths().to_vec();
    output::print_table(table)?;
    Ok(widths)
}

async fn show(ctx: &Context, args: ShowArgs) -> Result<ExitCode, CliError> {
    let mut client = ctx.admin().await?;
    let node = client
        .get_node(GetNodeRequest { name: args.name })
        .await
        .map_err(|s| ctx.call_error(&s))?
        .into_inner();
    let row = NodeRow::from(node);
    match args.output {
        Format::Json | Format::Yaml => output::print_data(&row, args.output)?,
        Format::Table | Format::Wide => output::print_text(&describe(&row))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `nodes show` as a key: value list.
fn describe(r: &NodeRow) -> String {
    let now = output::now_ms();
    let mut lines: Vec<(&str, String)> =
        vec![("Name", r.name.clone()), ("Status", r.status.clone())];
    if !r.status_reason.is_empty() {
        lines.push(("Reason", r.status_reason.clone()));
    }
    lines.extend([
        ("Addresses", or_dash(&r.addresses.join(", "))),
        ("Hostname", or_dash(&r.hostname)),
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
        ("Agent version", or_dash(&r.agent_version)),
        ("Config version", or_dash(&r.config_version)),
        (
            "CPU",
            match (r.cpu_percent, r.cpu_count) {
                (Some(p), Some(n)) => format!("{p:.1}% of {n} cores"),
                _ => "-".into(),
            },
        ),
        ("Memory", r.mem_text()),
        ("Disk", r.disk_text()),
        (
            "Load",
            r.load.map_or("-".into(), |l| {
                format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
            }),
        ),
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
