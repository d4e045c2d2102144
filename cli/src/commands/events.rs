//! `cdnctl events [--follow]`: what happened on the master — nodes coming
//! online and going offline, pushes, rollbacks, exec sessions, token, user
//! and certificate changes — as it happens.

use std::process::ExitCode;

use cdn_proto::v1::EventsRequest;
use clap::Args;
use serde::Serialize;

use crate::output::{self, Cell, Format, Row};
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
    #[arg(short, long, default_value = "table", value_parser = output::formats(Event::FORMATS))]
    pub output: Format,
}

/// One event, with the documented field names of `-o json|yaml`.
#[derive(Serialize)]
struct Event {
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
    let request = EventsRequest {
        limit: a.limit,
        follow: a.follow,
    };
    let mut stream = ctx
        .call(request, |mut c, r| async move {
            let follow = r.follow;
            let mut req = tonic::Request::new(r);
            if follow {
                // A follower waits for events as long as it lives.
                req.set_timeout(std::time::Duration::from_secs(100 * 365 * 24 * 3600));
            }
            c.events(req).await
        })
        .await?;
    let mut printer = output::Printer::new(a.output);
    loop {
        let next = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            m = stream.message() => m.map_err(|s| ctx.call_error(&s))?,
        };
        let Some(e) = next else { break };
        printer.record(&Event {
            id: e.id,
            time: output::rfc3339(e.time_ms),
            kind: e.kind,
            target: e.target,
            user: e.user,
            detail: e.detail,
            success: e.success,
        })?;
    }
    if !a.follow {
        printer.end_of_stream::<Event>();
    }
    Ok(ExitCode::SUCCESS)
}

impl Row for Event {
    const EMPTY: &'static str = "No events yet.";
    /// Events come one by one: fixed widths keep their lines aligned.
    const MIN_WIDTHS: &'static [usize] = &[24, 13, 16, 10];

    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["TIME", "KIND", "TARGET", "USER", "DETAIL"]
    }

    fn cells(&self, _wide: bool) -> Vec<Cell> {
        let kind = if self.success {
            Cell::new(&self.kind)
        } else {
            Cell::new(format!("{} (failed)", self.kind))
        };
        vec![
            Cell::new(self.time.as_deref().unwrap_or_default()),
            kind,
            Cell::new(&self.target),
            Cell::new(&self.user),
            Cell::new(&self.detail),
        ]
    }

    fn name(&self) -> String {
        format!("event/{}", self.id)
    }
}
