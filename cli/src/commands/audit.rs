//! `cdnctl audit`: who changed what, when, with what result (admin only).

use std::process::ExitCode;

use cdn_proto::v1::ListAuditRequest;
use clap::Args;
use serde::Serialize;

use crate::output::{self, Cell, Format, Kind, Row};
use crate::{CliError, Context};

/// Arguments of `cdnctl audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Newest entries to show.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// Only entries of this user.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only this action, or a family of them: push, rollback, exec,
    /// token (token.create, token.revoke), user, node.
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = output::formats(Entry::FORMATS))]
    pub output: Format,
}

/// One entry, with the documented field names of `-o json|yaml`.
#[derive(Serialize)]
struct Entry {
    id: u64,
    time: Option<String>,
    user: String,
    role: String,
    peer: String,
    action: String,
    target: String,
    detail: String,
    result: &'static str,
    error: String,
}

/// Runs `cdnctl audit`.
pub async fn run(ctx: &Context, a: AuditArgs) -> Result<ExitCode, CliError> {
    let request = ListAuditRequest {
        limit: a.limit,
        user: a.user.unwrap_or_default(),
        action: a.action.unwrap_or_default(),
    };
    let r = ctx
        .call(request, |mut c, r| async move { c.list_audit(r).await })
        .await?;
    let entries: Vec<Entry> = r
        .entries
        .into_iter()
        .map(|e| Entry {
            id: e.id,
            time: output::rfc3339(e.time_ms),
            user: e.user,
            role: e.role,
            peer: e.peer,
            action: e.action,
            target: e.target,
            detail: e.detail,
            result: if e.success { "ok" } else { "failed" },
            error: e.error,
        })
        .collect();
    output::print(&entries, a.output)?;
    Ok(ExitCode::SUCCESS)
}

impl Row for Entry {
    const FORMATS: &'static [Kind] = Kind::ALL;
    const EMPTY: &'static str = "No audit entries found.";

    fn columns(wide: bool) -> Vec<&'static str> {
        let mut columns = vec!["ID", "TIME", "USER", "ACTION", "TARGET", "RESULT", "DETAIL"];
        if wide {
            columns.extend(["ROLE", "PEER", "ERROR"]);
        }
        columns
    }

    /// DETAIL shows the error of a failed entry, unless the wide form has
    /// an ERROR column for it.
    fn cells(&self, wide: bool) -> Vec<Cell> {
        let detail = if self.error.is_empty() || wide {
            &self.detail
        } else {
            &self.error
        };
        let mut cells = vec![
            Cell::new(self.id),
            Cell::new(self.time.as_deref().unwrap_or_default()),
            Cell::new(&self.user),
            Cell::new(&self.action),
            Cell::new(&self.target),
            Cell::new(self.result),
            Cell::new(detail),
        ];
        if wide {
            cells.extend([
                Cell::new(&self.role),
                Cell::new(&self.peer),
                Cell::new(&self.error),
            ]);
        }
        cells
    }

    fn name(&self) -> String {
        format!("auditentry/{}", self.id)
    }
}
