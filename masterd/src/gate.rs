//! The door in front of both services: a request without a certificate
//! this master knows is refused before its body is read, so strangers
//! cannot make the master buffer messages. Two exceptions: health checks
//! (`grpc.health.v1.Health`, see [`crate::health`]: probes and load
//! balancers have no certificate, and a standby or a stopping master must
//! answer them too), and `AgentService/Enroll`, whose body is capped at
//! [`ENROLL_MAX_BYTES`] and of which at most [`ENROLL_CONCURRENCY`] are
//! read at once. Everything else — server reflection included — needs a
//! certificate this master issued.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::auth::Authenticator;
use crate::error::MasterError;
use crate::leader::Leadership;
use cdn_proto::limits::ENROLL_MAX_BYTES;

/// Path of the one call open to callers without a certificate.
pub const ENROLL_PATH: &str = "/cdn.v1.AgentService/Enroll";
/// Enrolment requests read at once, master-wide.
pub const ENROLL_CONCURRENCY: usize = 64;

/// Wraps a service in the gate.
#[derive(Clone)]
pub struct GateLayer {
    auth: Arc<Authenticator>,
    leadership: Arc<Leadership>,
    enrolling: Arc<Semaphore>,
}

impl GateLayer {
    pub fn new(auth: Arc<Authenticator>, leadership: Arc<Leadership>) -> Self {
        Self {
            auth,
            leadership,
            enrolling: Arc::new(Semaphore::new(ENROLL_CONCURRENCY)),
        }
    }
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gate<S>;
    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            auth: Arc::clone(&self.auth),
            leadership: Arc::clone(&self.leadership),
            enrolling: Arc::clone(&self.enrolling),
        }
    }
}

/// The gate around one service.
#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    auth: Arc<Authenticator>,
    leadership: Arc<Leadership>,
    enrolling: Arc<Semaphore>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn refuse<E: Send + 'static>(e: MasterError) -> BoxFuture<Result<http::Response<Body>, E>> {
    let status: tonic::Status = e.into();
    Box::pin(std::future::ready(Ok(status.into_http())))
}

/// Whether a call to `path` is the agent API's (the rest is the admin
/// API's): which of the leader's addresses a refusal names.
pub fn for_agents(path: &str) -> bool {
    path.starts_with("/cdn.v1.AgentService/")
}

/// The refusal of a master that does not lead, naming the leader's
/// address for the API `path` belongs to.
pub fn standby<E: Send + 'static>(
    leadership: &Leadership,
    path: &str,
) -> BoxFuture<Result<http::Response<Body>, E>> {
    let status = leadership.refusal(for_agents(path));
    Box::pin(std::future::ready(Ok(status.into_http())))
}

impl<S> tower::Service<http::Request<Body>> for Gate<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The clone that was made ready goes to this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // Health checks answer for every master, leading or not, with or
        // without a certificate; the health service bounds what they cost.
        if crate::health::is_health_path(req.uri().path()) {
            return Box::pin(inner.call(req));
        }
        // A master that does not lead (or whose lease may have run out)
        // serves nobody: callers go to the leader.
        if !self.leadership.is_leader() {
            return standby(&self.leadership, req.uri().path());
        }
        if self.auth.insecure() {
            return Box::pin(inner.call(req));
        }
        let info = req
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .cloned();
        let ip = info
            .as_ref()
            .and_then(|i| i.get_ref().remote_addr())
            .map(|a| a.ip());
        if req.uri().path() == ENROLL_PATH {
            let Ok(permit) = Arc::clone(&self.enrolling).try_acquire_owned() else {
                self.auth.count_refusal("rate_limited");
                return refuse(MasterError::RateLimited(
                    "too many enrolments at once; retry in a moment".into(),
                ));
            };
            let req = req.map(|b| Body::new(http_body_util::Limited::new(b, ENROLL_MAX_BYTES)));
            return Box::pin(async move {
                let r = inner.call(req).await;
                drop(permit);
                r
            });
        }
        let certs = info.as_ref().and_then(|i| i.peer_certs());
        match self.auth.admit(certs.as_deref().map(|c| c.as_slice()), ip) {
            Ok(fp) => {
                let mut req = req;
                req.extensions_mut().insert(fp);
                Box::pin(inner.call(req))
            }
            Err(e) => refuse(e),
        }
    }
}
