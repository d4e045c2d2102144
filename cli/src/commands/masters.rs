//! `cdnctl masters`: the masters of the control plane (the leader and its
//! standbys), their addresses, store backend and lease, and the last
//! backup.

use std::process::ExitCode;

use cdn_proto::v1::{ListMastersRequest, ListMastersResponse, MasterInfo};
use clap::Args;
use serde::Serialize;

use crate::output::{self, Cell, Format, Human, Kind, Listing, Row, Table};
use crate::{CliError, Context};

/// Said when the master predates `ListMasters`.
const NOT_REPORTED: &str = "this master does not report masters; upgrade masterd";

/// Arguments of `cdnctl masters`.
#[derive(Debug, Args)]
pub struct MastersArgs {
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = output::formats(Masters::FORMATS))]
    pub output: Format,
}

/// Runs `cdnctl masters`.
pub async fn run(ctx: &Context, a: MastersArgs) -> Result<ExitCode, CliError> {
    let reply = ctx
        .call(ListMastersRequest {}, |mut c, r| async move {
            c.list_masters(r).await.map_err(|s| match s.code() {
                tonic::Code::Unimplemented => tonic::Status::unimplemented(NOT_REPORTED),
                _ => s,
            })
        })
        .await?;
    output::print(&Masters::from(reply), a.output)?;
    Ok(ExitCode::SUCCESS)
}

/// The listing: the masters, then the last backup (`-o json|yaml`:
/// `masters`, `last_backup`).
#[derive(Debug, Serialize)]
struct Masters {
    masters: Vec<MasterRow>,
    /// None when no backup was written yet.
    last_backup: Option<Backup>,
    /// When the listing was made, for the ages.
    #[serde(skip)]
    now_ms: i64,
}

/// One master as scripts see it.
#[derive(Debug, Serialize)]
struct MasterRow {
    id: String,
    /// `leader` or `standby`.
    role: String,
    admin_addr: String,
    agent_addr: String,
    /// `embedded` or `etcd`.
    backend: String,
    /// RFC 3339.
    started: Option<String>,
    started_ms: i64,
    /// RFC 3339; null for a standby.
    leader_since: Option<String>,
    leader_since_ms: i64,
    /// Age of the master's etcd lease at its last renewal (0 on the
    /// embedded store).
    lease_age_ms: i64,
    #[serde(skip)]
    now_ms: i64,
}

/// The last backup.
#[derive(Debug, Serialize)]
struct Backup {
    /// RFC 3339.
    time: Option<String>,
    time_ms: i64,
    /// The master that wrote it.
    by: String,
    file: String,
}

impl From<ListMastersResponse> for Masters {
    fn from(r: ListMastersResponse) -> Self {
        Self::at(r, output::now_ms())
    }
}

impl Masters {
    /// The listing of `r` with ages as of `now_ms`.
    fn at(r: ListMastersResponse, now_ms: i64) -> Self {
        let row = |m: MasterInfo| MasterRow {
            started: output::rfc3339(m.started_ms),
            leader_since: output::rfc3339(m.leader_since_ms),
            id: m.id,
            role: m.role,
            admin_addr: m.admin_addr,
            agent_addr: m.agent_addr,
            backend: m.backend,
            started_ms: m.started_ms,
            leader_since_ms: m.leader_since_ms,
            lease_age_ms: m.lease_age_ms,
            now_ms,
        };
        let mut masters: Vec<MasterRow> = r.masters.into_iter().map(row).collect();
        // The leader first, then the standbys by id.
        masters.sort_by(|a, b| (a.role != "leader", &a.id).cmp(&(b.role != "leader", &b.id)));
        Self {
            masters,
            last_backup: (r.last_backup_ms > 0).then(|| Backup {
                time: output::rfc3339(r.last_backup_ms),
                time_ms: r.last_backup_ms,
                by: r.last_backup_by,
                file: r.last_backup_file,
            }),
            now_ms,
        }
    }

    /// The line under the table about the last backup.
    fn backup_line(&self) -> String {
        match &self.last_backup {
            None => "Last backup: never".into(),
            Some(b) => {
                let mut line = format!("Last backup: {} ago", output::age(self.now_ms - b.time_ms));
                if !b.by.is_empty() {
                    line.push_str(&format!(" by {}", b.by));
                }
                if !b.file.is_empty() {
                    line.push_str(&format!(" ({})", b.file));
                }
                line
            }
        }
    }
}

impl Listing for Masters {
    const FORMATS: &'static [Kind] = Kind::ALL;
    /// Custom columns: a row per master.
    const ITEMS: Option<&'static str> = Some("masters");

    fn data(&self) -> impl Serialize {
        self
    }

    fn names(&self) -> Vec<String> {
        self.masters.iter().map(Row::name).collect()
    }

    fn human(&self, wide: bool) -> Human {
        Human::Table(Table::of(&self.masters, wide))
    }

    fn empty(&self) -> Option<&'static str> {
        self.masters.is_empty().then_some("No masters reported.")
    }

    fn footer(&self) -> Option<String> {
        Some(self.backup_line())
    }
}

impl MasterRow {
    fn ago(&self, ms: i64) -> String {
        if ms <= 0 {
            "-".into()
        } else {
            output::age(self.now_ms - ms)
        }
    }

    fn lease_age(&self) -> String {
        if self.lease_age_ms <= 0 {
            return "-".into();
        }
        let ms = u64::try_from(self.lease_age_ms).unwrap_or(0);
        cdn_common::duration::short(std::time::Duration::from_millis(ms))
    }
}

impl Row for MasterRow {
    const FORMATS: &'static [Kind] = Kind::ALL;

    fn columns(wide: bool) -> Vec<&'static str> {
        let mut columns = vec![
            "ID",
            "ROLE",
            "ADDRESS",
            "AGENT ADDRESS",
            "BACKEND",
            "LEADER SINCE",
            "LEASE AGE",
        ];
        if wide {
            columns.push("STARTED");
        }
        columns
    }

    fn cells(&self, wide: bool) -> Vec<Cell> {
        let mut cells = vec![
            Cell::new(&self.id),
            Cell::or_dash(&self.role),
            Cell::or_dash(&self.admin_addr),
            Cell::or_dash(&self.agent_addr),
            Cell::or_dash(&self.backend),
            self.ago(self.leader_since_ms).into(),
            self.lease_age().into(),
        ];
        if wide {
            cells.push(self.ago(self.started_ms).into());
        }
        cells
    }

    fn name(&self) -> String {
        format!("master/{}", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::rendered;

    const NOW: i64 = 1_800_000_000_000;

    fn reply() -> ListMastersResponse {
        ListMastersResponse {
            masters: vec![
                MasterInfo {
                    id: "m2".into(),
                    agent_addr: "10.0.0.2:50051".into(),
                    admin_addr: "10.0.0.2:50052".into(),
                    role: "standby".into(),
                    backend: "etcd".into(),
                    started_ms: NOW - 600_000,
                    leader_since_ms: 0,
                    lease_age_ms: 1_200,
                },
                MasterInfo {
                    id: "m1".into(),
                    agent_addr: "10.0.0.1:50051".into(),
                    admin_addr: "10.0.0.1:50052".into(),
                    role: "leader".into(),
                    backend: "etcd".into(),
                    started_ms: NOW - 3 * 3_600_000,
                    leader_since_ms: NOW - 2 * 3_600_000,
                    lease_age_ms: 300,
                },
            ],
            last_backup_ms: NOW - 42_000,
            last_backup_by: "m1".into(),
            last_backup_file: "/var/backups/cdn.bak".into(),
        }
    }

    #[test]
    fn the_leader_comes_first_with_ages_and_the_backup_under_the_table() {
        let (note, text) = rendered(&Masters::at(reply(), NOW), Format::Table);
        assert_eq!(note, None);
        let text = text.unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            [
                "ID  ROLE     ADDRESS         AGENT ADDRESS   BACKEND  LEADER SINCE  LEASE AGE",
                "m1  leader   10.0.0.1:50052  10.0.0.1:50051  etcd     2h            300ms",
                "m2  standby  10.0.0.2:50052  10.0.0.2:50051  etcd     -             1s 200ms",
                "Last backup: 42s ago by m1 (/var/backups/cdn.bak)",
            ]
        );
        let wide = rendered(&Masters::at(reply(), NOW), Format::Wide)
            .1
            .unwrap();
        assert!(wide.lines().next().unwrap().contains("STARTED"), "{wide}");
        assert!(wide.contains("3h"), "{wide}");
    }

    #[test]
    fn the_embedded_store_has_no_lease_and_a_backup_may_never_have_been_made() {
        let mut r = reply();
        r.masters.truncate(1);
        r.masters[0].backend = "embedded".into();
        r.masters[0].lease_age_ms = 0;
        r.last_backup_ms = 0;
        let m = Masters::at(r, NOW);
        let text = rendered(&m, Format::Table).1.unwrap();
        assert!(
            text.lines().nth(1).unwrap().trim_end().ends_with('-'),
            "{text}"
        );
        assert!(text.ends_with("\nLast backup: never"), "{text}");
        assert_eq!(
            rendered(
                &Masters::at(ListMastersResponse::default(), NOW),
                Format::Table
            ),
            (Some("No masters reported.".into()), None)
        );
    }

    #[test]
    fn names_and_custom_columns_are_per_master() {
        let m = Masters::at(reply(), NOW);
        assert_eq!(
            rendered(&m, output::format("name")).1.unwrap(),
            "master/m1\nmaster/m2"
        );
        assert_eq!(
            rendered(&m, output::format("custom-columns=ID:.id,ROLE:.role"))
                .1
                .unwrap(),
            "ID  ROLE\nm1  leader\nm2  standby"
        );
        assert_eq!(
            rendered(&m, output::format("jsonpath={.last_backup.by}"))
                .1
                .unwrap(),
            "m1"
        );
    }

    #[test]
    fn scripts_get_every_field() {
        let json = rendered(&Masters::at(reply(), NOW), Format::Json)
            .1
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["masters"][0]["id"], "m1");
        assert_eq!(v["masters"][0]["role"], "leader");
        assert_eq!(v["masters"][0]["admin_addr"], "10.0.0.1:50052");
        assert_eq!(v["masters"][0]["lease_age_ms"], 300);
        assert_eq!(v["masters"][1]["leader_since"], serde_json::Value::Null);
        assert_eq!(v["last_backup"]["by"], "m1");
        assert_eq!(v["last_backup"]["file"], "/var/backups/cdn.bak");
        let yaml = rendered(&Masters::at(reply(), NOW), Format::Yaml)
            .1
            .unwrap();
        assert!(yaml.contains("last_backup:"), "{yaml}");
        // The footer line is for people only.
        assert!(!json.contains("Last backup") && !yaml.contains("Last backup"));
    }
}
