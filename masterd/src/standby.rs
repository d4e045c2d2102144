//! The server of a master that does not lead: on the same sockets as a
//! leader's, every gRPC call is answered `UNAVAILABLE` with the leader's
//! address ([`cdn_common::leader`]), so agents and cdnctl move on without
//! an operator — except health checks, answered NOT_SERVING (see
//! [`crate::health`]). The metrics endpoint is the process's, served
//! whatever the role (`cdn_master_is_leader` 0, `/readyz` 503).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Server;

use crate::config::MasterConfig;
use crate::health::Health;
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::server::ServeError;

/// Beyond the lease TTL, how long a held answer may wait for the election.
const HOLD_SLACK: Duration = Duration::from_secs(1);
/// A held answer leaves this much of the caller's deadline for the answer
/// to travel.
const DEADLINE_SLACK: Duration = Duration::from_millis(200);

/// The leader the caller could not reach, as it says.
fn unreachable_leader(req: &axum::extract::Request) -> Option<String> {
    req.headers()
        .get(cdn_common::leader::UNREACHABLE_LEADER_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// What is left of the caller's `grpc-timeout`, less the slack.
fn caller_deadline(req: &axum::extract::Request) -> Option<Duration> {
    let v = req.headers().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    let d = match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    };
    Some(d.saturating_sub(DEADLINE_SLACK))
}

/// Serves the standby's answers on the gRPC `listeners` (agent API, and
/// the admin API's when separate) until `stop`; its health Watch streams
/// end when `watching` is cancelled (after `stop`, once a term serves or
/// the process stops), with their last status.
pub async fn serve(
    listeners: (TcpListener, Option<TcpListener>),
    tls: Option<tokio_rustls::TlsAcceptor>,
    config: MasterConfig,
    leadership: Arc<Leadership>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    (stop, watching): (CancellationToken, CancellationToken),
) -> Result<(), ServeError> {
    let (grpc, admin) = listeners;
    let tasks = TaskTracker::new();
    let accept = crate::server::accept_policy(&config, &metrics, tasks.clone(), stop.clone());
    let watches = crate::health::watch_slots();
    let ports: Vec<(TcpListener, &'static [&'static str])> = match admin {
        None => vec![(
            grpc,
            &[crate::health::AGENT_SERVICE, crate::health::ADMIN_SERVICE],
        )],
        Some(admin) => vec![
            (grpc, &[crate::health::AGENT_SERVICE]),
            (admin, &[crate::health::ADMIN_SERVICE]),
        ],
    };
    let mut servers = Vec::new();
    for (listener, services) in ports {
        let leadership = Arc::clone(&leadership);
        let hold = config.store.etcd.lease_ttl + HOLD_SLACK;
        let health_routes = tonic::service::Routes::new(health.service(
            services,
            Arc::clone(&watches),
            watching.clone(),
        ))
        .prepare()
        .into_axum_router();
        let app = health_routes.fallback(move |req: axum::extract::Request| {
            let leadership = Arc::clone(&leadership);
            async move {
                let agent = crate::gate::for_agents(req.uri().path());
                if let Some(dead) = unreachable_leader(&req) {
                    // The caller could not reach the leader this standby
                    // named (killed, its lease not yet run out): answer
                    // when the election has moved on, within the caller's
                    // deadline, instead of naming that leader again.
                    let within = caller_deadline(&req).map_or(hold, |d| d.min(hold));
                    if !leadership.moved_on_from(agent, &dead, within).await {
                        return cdn_common::leader::standby_status("")
                            .into_http::<axum::body::Body>();
                    }
                }
                leadership.refusal(agent).into_http::<axum::body::Body>()
            }
        });
        let mut builder = Server::builder();
        let router = builder.add_routes(tonic::service::Routes::from(app));
        let stop_serving = stop.clone().cancelled_owned();
        let accept = accept.clone();
        let server: futures::future::BoxFuture<'static, Result<(), tonic::transport::Error>> =
            match &tls {
                Some(t) => Box::pin(router.serve_with_incoming_shutdown(
                    crate::conn::tls(listener, accept, t.clone()),
                    stop_serving,
                )),
                None => Box::pin(router.serve_with_incoming_shutdown(
                    crate::conn::plain(listener, accept),
                    stop_serving,
                )),
            };
        servers.push(server);
    }
    let results = futures::future::join_all(servers).await;
    tasks.close();
    tasks.wait().await;
    for r in results {
        r?;
    }
    Ok(())
}
