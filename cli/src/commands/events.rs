//! `cdnctl events [--follow]`: what happened on the master — nodes coming
//! online and going offline, pushes, rollbacks, exec sessions, token, user
//! and certificate changes — as it happens.

use std::process::ExitCode;

use cdn_proto::v1::EventsRequest;
use clap::Args;
use serde::Serialize;

use crate::output::{self, Format};
use crate::{CliError, Context};

/// Arguments of `cdnctl events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep printing new events until interrupted (as `kubectl get events -w`).
    #[arg(short, long)]
    pub follow: bool,
    /// Recent events printed first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Output format; json and yaml print one document per event (JSON: one
    /// object per line).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// One event, with the documented field names of `-o json|yaml`.
#[derive(Serialize)]
struct Row {
    id: u64,
    time: Option<String>,
    kind: String,
    target: String,
    user: String,
    detail: String,
    success: bool,
}

/// Runs `cdnctl events`.
pub async fn run(ctx: &Context, a: EventsArgs) -> Result<ExitCode, CliError> {
    let mut client = ctx.admin().await?;
    let mut req = tonic::Request::new(EventsRequest {
        limit: a.limit,
        follow: a.follow,
    });
    if a.follow {
        // A follower waits for events as long as it lives.
        req.set_timeout(std::time::Duration::from_secs(100 * 365 * 24 * 3600));
    }
    let mut stream = client
        .events(req)
        .await
        .map_err(|s| ctx.call_error(&s))?
        .into_inner();
    let mut first = true;
    loop {
        let next = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            m = stream.message() => m.map_err(|s| ctx.call_error(&s))?,
        };
        let Some(e) = next else { break };
        let row = Row {
            id: e.id,
            time: output::rfc3339(e.time_ms),
            kind: e.kind,
            target: e.target,
            user: e.user,
            detail: e.detail,
            success: e.success,
        };
        match a.output {
            Format::Json => output::print_text(
                &serde_json::to_string(&row)
                    .map_err(|e| CliError::Local(format!("cannot render JSON: {e}")))?,
            )?,
            Format::Yaml => {
                let doc = serde_yaml_ng::to_string(&row)
                    .map_err(|e| CliError::Local(format!("cannot render YAML: {e}")))?;
                output::print_text(&format!("---\n{}", doc.trim_end()))?;
            }
            _ => {
                if first && !output::no_headers() {
                    output::print_text(&format!(
                        "{:<24}  {:<13}  {:<16}  {:<10}  DETAIL",
                        "TIME", "KIND", "TARGET", "USER"
                    ))?;
                }
                let kind = if row.success {
                    row.kind
                } else {
                    format!("{} (failed)", row.kind)
                };
                output::print_text(&format!(
                    "{:<24}  {:<13}  {:<16}  {:<10}  {}",
                    row.time.unwrap_or_default(),
                    kind,
                    row.target,
                    row.user,
                    row.detail
                ))?;
            }
        }
        first = false;
    }
    Ok(ExitCode::SUCCESS)
}
