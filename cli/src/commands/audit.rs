//! `cdnctl audit`: who changed what, when, with what result (admin only).

use std::process::ExitCode;

use cdn_proto::v1::ListAuditRequest;
use clap::Args;
use serde::Serialize;

use crate::output::{self, Format};
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
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
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
    let mut client = ctx.admin().await?;
    let r = client
        .list_audit(ListAuditRequest {
            limit: a.limit,
            user: a.user.unwrap_or_default(),
            action: a.action.unwrap_or_default(),
        })
        .await
        .map_err(|s| ctx.call_error(&s))?
        .into_inner();
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
    match a.output {
        Format::Json | Format::Yaml => output::print_data(&entries, a.output)?,
        f => {
            let wide = f == Format::Wide;
            let mut header = vec!["ID", "TIME", "USER", "ACTION", "TARGET", "RESULT", "DETAIL"];
            if wide {
                header.extend(["ROLE", "PEER", "ERROR"]);
            }
            let mut t = output::table(&header);
            for e in entries {
                let detail = if e.error.is_empty() || wide {
                    e.detail
                } else {
                    e.error.clone()
                };
                let mut row = vec![
                    e.id.to_string(),
                    e.time.unwrap_or_default(),
                    e.user,
                    e.action,
                    e.target,
                    e.result.to_string(),
                    detail,
                ];
                if wide {
                    row.extend([e.role, e.peer, e.error]);
                }
                t.add_row(row);
            }
            output::print_table(t)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
