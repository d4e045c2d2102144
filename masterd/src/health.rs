//! Whether this master serves, and the standard ways to ask it: gRPC
//! health checking (`grpc.health.v1.Health`, Check and Watch) on the gRPC
//! ports, and `/readyz` on the metrics port (see [`crate::metrics`]).
//!
//! A master serves when its store is open, it leads (always, on the
//! embedded store) and its term of leadership is running: [`Health`]
//! derives that from the [`Leadership`] and the [`Phase`] the serving code
//! sets, live, so a standby, a master starting its term and one shutting
//! down all answer NOT_SERVING with the reason. The health service is the
//! one gRPC service open to callers without a client certificate (probes
//! and load balancers have none; the gate lets [`HEALTH_PATH_PREFIX`]
//! through): it reveals only that status, its requests are capped at
//! [`MAX_HEALTH_REQUEST_BYTES`], and at most [`MAX_HEALTH_WATCHES`] Watch
//! streams are open at once (one more is refused `RESOURCE_EXHAUSTED` and
//! counted in `cdn_refused_requests_total{reason="rate_limited"}`).
//!
//! The service is our own implementation of tonic-health's generated
//! `Health` trait rather than its `HealthReporter`: the status is computed
//! from the leadership (a lease that lapsed counts at once, before any
//! task could push it), Watch streams end when their server stops (after
//! sending NOT_SERVING, so a shutting-down master says so and does not
//! hold its drain open), and Watch of an unknown service answers
//! SERVICE_UNKNOWN as the protocol asks.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health as HealthApi, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::leader::{Leadership, Role};
use crate::metrics::{Metrics, ReasonLabel};
use prometheus_client::metrics::counter::Counter;

/// Paths of the health service: open to callers without a certificate.
pub const HEALTH_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Largest health request read (a service name).
pub const MAX_HEALTH_REQUEST_BYTES: usize = 1024;

/// Watch streams open at once, per master, over all callers.
pub const MAX_HEALTH_WATCHES: usize = 256;

/// The overall health of the server, as the protocol names it.
pub const OVERALL: &str = "";

/// Name of the agent API in health checks.
pub const AGENT_SERVICE: &str = "cdn.v1.AgentService";

/// Name of the admin API in health checks.
pub const ADMIN_SERVICE: &str = "cdn.v1.AdminService";

/// Whether a call to `path` is a health check.
pub fn is_health_path(path: &str) -> bool {
    path.starts_with(HEALTH_PATH_PREFIX)
}

/// Where this process is in its life, as the serving code sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not serving yet: the store is loading, or (on etcd) no term of
    /// leadership is running.
    Starting,
    /// A master (or a leader's term) serves.
    Serving,
    /// Shutting down: stopped accepting, draining.
    Stopping,
}

/// Whether this master serves, with the reason when it does not; shared by
/// the gRPC health service on every port and `/readyz`.
pub struct Health {
    leadership: Arc<Leadership>,
    phase: watch::Sender<Phase>,
    /// `cdn_refused_requests_total{reason="rate_limited"}`: Watch streams
    /// refused for want of a slot.
    refused: Counter,
}

impl Health {
    /// Health of the master led by `leadership`, starting; refusals are
    /// counted in `metrics`.
    pub fn new(leadership: Arc<Leadership>, metrics: &Metrics) -> Arc<Self> {
        Arc::new(Self {
            leadership,
            phase: watch::channel(Phase::Starting).0,
            refused: metrics
                .refused
                .get_or_create(&ReasonLabel {
                    reason: "rate_limited",
                })
                .clone(),
        })
    }

    /// Moves to `phase` (Watch streams see it at once).
    pub fn set_phase(&self, phase: Phase) {
        self.phase.send_if_modified(|p| {
            let changed = *p != phase;
            *p = phase;
            changed
        });
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Resolves once the phase is no longer [`Phase::Starting`].
    pub async fn left_start(&self) {
        let mut rx = self.phase.subscribe();
        let _ = rx.wait_for(|p| *p != Phase::Starting).await;
    }

    /// `Ok` when this master serves agents and operators, else one line
    /// saying why not.
    pub fn readiness(&self) -> Result<(), String> {
        let phase = self.phase();
        if phase == Phase::Stopping {
            return Err("this master is shutting down".into());
        }
        if !self.leadership.is_leader() {
            return Err(match self.leadership.role() {
                Role::Leader { .. } => {
                    "this master's lease was not renewed in time; it serves again once it leads"
                        .into()
                }
                Role::Standby { .. } => self.leadership.refusal(false).message().to_string(),
            });
        }
        match phase {
            Phase::Serving => Ok(()),
            _ => Err("this master is starting: its store is loading".into()),
        }
    }

    /// The gRPC status every service of this master has now.
    fn status(&self) -> ServingStatus {
        match self.readiness() {
            Ok(()) => ServingStatus::Serving,
            Err(_) => ServingStatus::NotServing,
        }
    }

    /// The health service of one port serving `services` (besides the
    /// overall `""`); its Watch streams end when `closing` is cancelled
    /// (the port's server stops), after their last status.
    pub fn service(
        self: &Arc<Self>,
        services: &[&'static str],
        watches: Arc<Semaphore>,
        closing: CancellationToken,
    ) -> HealthServer<HealthService> {
        let mut known = vec![OVERALL];
        known.extend_from_slice(services);
        HealthServer::new(HealthService {
            health: Arc::clone(self),
            known,
            watches,
            closing,
        })
        .max_decoding_message_size(MAX_HEALTH_REQUEST_BYTES)
    }
}

/// The Watch streams one master allows at once: share one among its ports.
pub fn watch_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_HEALTH_WATCHES))
}

/// `grpc.health.v1.Health` of one port.
pub struct HealthService {
    health: Arc<Health>,
    /// Service names this port answers for.
    known: Vec<&'static str>,
    watches: Arc<Semaphore>,
    closing: CancellationToken,
}

impl HealthService {
    fn knows(&self, service: &str) -> bool {
        self.known.contains(&service)
    }

    fn unknown(&self, service: &str) -> Status {
        let names: Vec<String> = self.known.iter().map(|s| format!("{s:?}")).collect();
        Status::not_found(format!(
            "unknown service {:?}; this port answers for {}",
            service.escape_default().to_string(),
            names.join(", ")
        ))
    }
}

fn answer(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

/// What a Watch stream yields.
type WatchItem = Result<HealthCheckResponse, Status>;

/// One Watch stream's state between items.
struct Watching {
    health: Arc<Health>,
    phase: watch::Receiver<Phase>,
    role: watch::Receiver<Role>,
    closing: CancellationToken,
    /// What was sent last (None: nothing yet).
    last: Option<ServingStatus>,
    /// SERVICE_UNKNOWN for a name this port does not serve.
    unknown: bool,
    done: bool,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Watching {
    /// The status to send now, unless it was sent last.
    fn fresh(&mut self) -> Option<ServingStatus> {
        let now = if self.unknown {
            ServingStatus::ServiceUnknown
        } else {
            self.health.status()
        };
        (self.last != Some(now)).then(|| {
            self.last = Some(now);
            now
        })
    }

    /// The next item: the current status first, then each change, then
    /// the end once the server closes.
    async fn next(mut self) -> Option<(WatchItem, Self)> {
        if self.done {
            return None;
        }
        loop {
            if self.closing.is_cancelled() {
                // The last word: NOT_SERVING when the master is stopping.
                self.done = true;
                return self.fresh().map(|s| (Ok(answer(s)), self));
            }
            if let Some(s) = self.fresh() {
                return Some((Ok(answer(s)), self));
            }
            tokio::select! {
                r = self.phase.changed() => if r.is_err() { self.closing.cancel() },
                r = self.role.changed() => if r.is_err() { self.closing.cancel() },
                _ = self.closing.cancelled() => {}
            }
        }
    }
}

#[tonic::async_trait]
impl HealthApi for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.get_ref().service.as_str();
        if !self.knows(service) {
            return Err(self.unknown(service));
        }
        Ok(Response::new(answer(self.health.status())))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = WatchItem> + Send>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.get_ref().service.as_str();
        let Ok(slot) = Arc::clone(&self.watches).try_acquire_owned() else {
            self.health.refused.inc();
            return Err(Status::resource_exhausted(format!(
                "too many health Watch streams open ({MAX_HEALTH_WATCHES}); use Check, or retry later"
            )));
        };
        let state = Watching {
            health: Arc::clone(&self.health),
            phase: self.health.phase.subscribe(),
            role: self.health.leadership.subscribe(),
            closing: self.closing.child_token(),
            last: None,
            unknown: !self.knows(service),
            done: false,
            _slot: slot,
        };
        Ok(Response::new(Box::pin(futures::stream::unfold(
            state,
            Watching::next,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::MasterRecord;
    use futures::StreamExt;

    fn single() -> Arc<Health> {
        let metrics = Arc::new(Metrics::default());
        let leadership = Leadership::single(MasterRecord::default(), Arc::clone(&metrics));
        Health::new(leadership, &metrics)
    }

    fn request(service: &str) -> Request<HealthCheckRequest> {
        Request::new(HealthCheckRequest {
            service: service.into(),
        })
    }

    #[tokio::test]
    async fn a_single_master_serves_between_start_and_stop() {
        let health = single();
        assert!(health.readiness().unwrap_err().contains("starting"));
        health.set_phase(Phase::Serving);
        assert_eq!(health.readiness(), Ok(()));
        health.set_phase(Phase::Stopping);
        assert!(health.readiness().unwrap_err().contains("shutting down"));
    }

    #[tokio::test]
    async fn check_knows_the_services_of_its_port_only() {
        let health = single();
        health.set_phase(Phase::Serving);
        let svc = HealthService {
            health: Arc::clone(&health),
            known: vec![OVERALL, AGENT_SERVICE],
            watches: watch_slots(),
            closing: CancellationToken::new(),
        };
        for name in [OVERALL, AGENT_SERVICE] {
            let r = svc.check(request(name)).await.unwrap().into_inner();
            assert_eq!(r.status, ServingStatus::Serving as i32);
        }
        let e = svc.check(request(ADMIN_SERVICE)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert!(e.message().contains("cdn.v1.AgentService"), "{e}");
    }

    #[tokio::test]
    async fn watch_follows_the_phase_and_ends_with_not_serving_when_closed() {
        let health = single();
        let closing = CancellationToken::new();
        let svc = HealthService {
            health: Arc::clone(&health),
            known: vec![OVERALL],
            watches: watch_slots(),
            closing: closing.clone(),
        };
        let mut s = svc.watch(request(OVERALL)).await.unwrap().into_inner();
        let status = |i: Option<WatchItem>| i.unwrap().unwrap().status;
        assert_eq!(status(s.next().await), ServingStatus::NotServing as i32);
        health.set_phase(Phase::Serving);
        assert_eq!(status(s.next().await), ServingStatus::Serving as i32);
        health.set_phase(Phase::Stopping);
        closing.cancel();
        assert_eq!(status(s.next().await), ServingStatus::NotServing as i32);
        assert!(s.next().await.is_none(), "the stream ends");
    }

    #[tokio::test]
    async fn watch_of_an_unknown_service_says_so_and_watches_are_bounded() {
        let health = single();
        let svc = HealthService {
            health,
            known: vec![OVERALL],
            watches: Arc::new(Semaphore::new(1)),
            closing: CancellationToken::new(),
        };
        let mut s = svc.watch(request("nope")).await.unwrap().into_inner();
        let first = s.next().await.unwrap().unwrap();
        assert_eq!(first.status, ServingStatus::ServiceUnknown as i32);
        let e = svc.watch(request(OVERALL)).await.err().unwrap();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert_eq!(svc.health.refused.get(), 1, "counted");
        drop(s);
        assert!(svc.watch(request(OVERALL)).await.is_ok(), "slot given back");
    }
}
