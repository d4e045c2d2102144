//! Authentication: from a request's client certificate to who is calling —
//! an operator with a [`Role`], or an agent speaking for one node — and the
//! refusals, counted and charged to the source's failure budget.
//!
//! Every caller but an enrolling agent presents a certificate the master
//! issued; the master knows each by its sha256 fingerprint
//! ([`Credentials`]), so a revoked one is refused on its next call.

use std::net::IpAddr;
use std::sync::Arc;

use cdn_common::tls::fingerprint;
use tokio_util::sync::CancellationToken;
use tonic::Request;

use super::credentials::Credentials;
use super::ratelimit::Limiter;
use crate::audit::Entry;
use crate::config::LimitsConfig;
use crate::error::MasterError;
use crate::metrics::{Metrics, ReasonLabel};
use crate::role::Role;
use crate::store::{CertKind, CertRecord};

/// The sha256 of a request's client certificate, as the gate found it
/// known (carried in the request's extensions to the handlers).
#[derive(Debug, Clone)]
pub struct PeerFingerprint(pub String);

/// What an agent's certificate says about it.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    /// The node it speaks for; None when the master runs insecure.
    node: Option<String>,
    ip: Option<IpAddr>,
    /// Cancelled when the certificate is revoked.
    pub revoked: CancellationToken,
}

/// An authenticated operator.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// Source address.
    pub peer: String,
    /// Cancelled when the caller's credential is revoked: long calls
    /// (exec sessions, event streams) end then.
    pub revoked: CancellationToken,
}

impl Caller {
    /// An audit entry of this caller's `action` on `target`.
    pub fn entry<'a>(
        &'a self,
        action: &'a str,
        target: &'a str,
        detail: String,
        result: Result<(), String>,
    ) -> Entry<'a> {
        Entry {
            user: &self.name,
            role: self.role.as_str(),
            peer: &self.peer,
            action,
            target,
            detail,
            result,
        }
    }
}

/// Checks callers against the credentials; counts and rate-limits refusals.
pub struct Authenticator {
    insecure: bool,
    credentials: Arc<Credentials>,
    failures: Limiter,
    registrations: Limiter,
    /// Refused calls written to the audit log, per source: the same rate
    /// as the failure budget, so a flood of refusals cannot flood the log.
    audited_refusals: Limiter,
    /// Per source, refusals left out of the log since its last entry.
    unaudited: dashmap::DashMap<IpAddr, u64>,
    metrics: Arc<Metrics>,
}

/// Most sources whose unaudited refusals are counted one by one.
const MAX_UNAUDITED_SOURCES: usize = 10_000;

fn ip_of<T>(req: &Request<T>) -> Option<IpAddr> {
    req.remote_addr().map(|a| a.ip())
}

/// The source address of a request, for logs and the audit log.
pub fn peer_of<T>(req: &Request<T>) -> String {
    ip_of(req).map(|i| i.to_string()).unwrap_or_default()
}

fn failure_rate(limits: &LimitsConfig) -> f64 {
    f64::from(limits.auth_failures_per_minute) / 60.0
}

impl Authenticator {
    /// Authentication against `credentials`; with `insecure` nobody is
    /// checked and every operator is an admin.
    pub fn new(
        insecure: bool,
        credentials: Arc<Credentials>,
        limits: &LimitsConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            insecure,
            credentials,
            failures: Limiter::new(failure_rate(limits), limits.auth_failure_burst),
            registrations: Limiter::new(f64::from(limits.register_rate), limits.register_burst),
            audited_refusals: Limiter::new(failure_rate(limits), limits.auth_failure_burst),
            unaudited: dashmap::DashMap::new(),
            metrics,
        }
    }

    /// New limits from a reloaded config (SIGHUP).
    pub fn set_limits(&self, limits: &LimitsConfig) {
        self.failures
            .set(failure_rate(limits), limits.auth_failure_burst);
        self.registrations
            .set(f64::from(limits.register_rate), limits.register_burst);
        self.audited_refusals
            .set(failure_rate(limits), limits.auth_failure_burst);
    }

    /// Whether a refused call from `ip` is written to the audit log:
    /// `Some(n)`, with the `n` refusals of that source left out since its
    /// last entry, or None (counted in
    /// `cdn_audit_refusals_unrecorded_total`) when the source refused more
    /// than `limits.auth_failures_per_minute` recently.
    pub fn audit_refusal(&self, ip: Option<IpAddr>) -> Option<u64> {
        let Some(ip) = ip else {
            return Some(0);
        };
        if self.audited_refusals.take(ip) {
            return Some(self.unaudited.remove(&ip).map_or(0, |(_, n)| n));
        }
        self.metrics.audit_refusals_unrecorded.inc();
        if self.unaudited.len() < MAX_UNAUDITED_SOURCES || self.unaudited.contains_key(&ip) {
            *self.unaudited.entry(ip).or_insert(0) += 1;
        }
        None
    }

    /// Who a refused operator call says it is, for its audit entry: the
    /// name and role (or kind) of the certificate it presented.
    pub fn presented_as<T>(&self, req: &Request<T>) -> (String, &'static str) {
        let fp = match req.extensions().get::<PeerFingerprint>() {
            Some(f) => f.0.clone(),
            None => req
                .peer_certs()
                .and_then(|c| c.first().map(|c| fingerprint(c)))
                .unwrap_or_default(),
        };
        match self.credentials.cert(&fp) {
            Some(rec) if rec.kind == CertKind::User => {
                (rec.name, rec.role.unwrap_or(Role::Viewer).as_str())
            }
            Some(rec) => (rec.name, "node"),
            None => (String::new(), ""),
        }
    }

    /// Whether the master runs without TLS and authentication.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// Counts a refusal in `cdn_refused_requests_total{reason}`.
    pub fn count_refusal(&self, reason: &'static str) {
        self.metrics
            .refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts `e` as an authentication refusal and returns it.
    pub(crate) fn refused(&self, e: MasterError) -> MasterError {
        self.count_refusal(match &e {
            MasterError::PermissionDenied(_) => "permission_denied",
            _ => "unauthenticated",
        });
        e
    }

    /// A failed authentication from `ip`: counted, charged to its budget.
    fn failed(&self, ip: Option<IpAddr>, e: MasterError) -> MasterError {
        if let Some(ip) = ip {
            self.failures.take(ip);
        }
        self.refused(e)
    }

    /// Refuses outright a source that failed too often recently.
    fn check_budget(&self, ip: Option<IpAddr>) -> Result<(), MasterError> {
        match ip {
            Some(ip) if !self.failures.has(ip) => Err(self.rate_limited(ip)),
            _ => Ok(()),
        }
    }

    fn rate_limited(&self, ip: IpAddr) -> MasterError {
        self.count_refusal("rate_limited");
        MasterError::RateLimited(format!(
            "too many failed authentications from {ip}; try again in {}s",
            self.failures.wait_secs(ip).max(1)
        ))
    }

    /// Takes the cost of a failure from `ip` before an attempt whose
    /// outcome is not known yet (an enrolment): many guesses sent at once
    /// cannot all pass. [`Authenticator::refund`] gives it back on success.
    pub(crate) fn pay_up_front(&self, ip: Option<IpAddr>) -> Result<(), MasterError> {
        match ip {
            Some(ip) if !self.failures.take(ip) => Err(self.rate_limited(ip)),
            _ => Ok(()),
        }
    }

    /// Gives back what [`Authenticator::pay_up_front`] took.
    pub(crate) fn refund(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.failures.give_back(ip);
        }
    }

    /// The gate's check, before a request's body is read: a certificate
    /// this master issued and has not revoked, or a refusal (counted and
    /// charged to the source like any failed authentication).
    pub fn admit(
        &self,
        certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
        ip: Option<IpAddr>,
    ) -> Result<PeerFingerprint, MasterError> {
        if let Some(fp) = certs.and_then(|c| c.first()).map(|c| fingerprint(c))
            && self.credentials.knows(&fp)
        {
            return Ok(PeerFingerprint(fp));
        }
        self.check_budget(ip)?;
        Err(self.failed(
            ip,
            MasterError::Unauthenticated(match certs {
                None => "no client certificate: present the credential this master issued".into(),
                Some(_) => "certificate revoked or unknown to this master".into(),
            }),
        ))
    }

    /// The valid certificate record the request was made with.
    fn presented<T>(&self, req: &Request<T>, who: &str) -> Result<CertRecord, MasterError> {
        let ip = ip_of(req);
        let Some(certs) = req.peer_certs() else {
            self.check_budget(ip)?;
            return Err(self.failed(
                ip,
                MasterError::Unauthenticated(format!(
                    "no client certificate: {who} must present the credential this master issued"
                )),
            ));
        };
        // The gate hashed it already; hash here only if it did not.
        let fp = match req.extensions().get::<PeerFingerprint>() {
            Some(f) => f.0.clone(),
            None => certs.first().map(|c| fingerprint(c)).unwrap_or_default(),
        };
        match self.credentials.cert(&fp) {
            Some(rec) if rec.not_after_ms > cdn_common::unix_millis_now() => Ok(rec),
            Some(rec) => {
                self.check_budget(ip)?;
                let e = MasterError::Unauthenticated(format!(
                    "the certificate of {} `{}` has expired; issue a new one",
                    rec.kind.as_str(),
                    rec.name
                ));
                Err(self.failed(ip, e))
            }
            None => {
                self.check_budget(ip)?;
                Err(self.failed(
                    ip,
                    MasterError::Unauthenticated(
                        "certificate revoked or unknown to this master".into(),
                    ),
                ))
            }
        }
    }

    /// Authenticates an operator call and checks that its role reaches
    /// `need`.
    pub fn operator<T>(&self, req: &Request<T>, need: Role) -> Result<Caller, MasterError> {
        let peer = peer_of(req);
        if self.insecure {
            return Ok(Caller {
                name: "insecure".into(),
                role: Role::Admin,
                peer,
                revoked: CancellationToken::new(),
            });
        }
        let rec = self.presented(req, "cdnctl")?;
        if rec.kind != CertKind::User {
            return Err(self.failed(
                ip_of(req),
                MasterError::PermissionDenied(format!(
                    "`{}` holds a node certificate, which cannot call the operator API",
                    rec.name
                )),
            ));
        }
        let role = rec.role.unwrap_or(Role::Viewer);
        if role < need {
            self.count_refusal("permission_denied");
            return Err(MasterError::PermissionDenied(format!(
                "user `{}` has role {}; this needs {}",
                rec.name,
                role.as_str(),
                need.as_str()
            )));
        }
        Ok(Caller {
            revoked: self.credentials.revocation_of(&rec.fingerprint),
            name: rec.name,
            role,
            peer,
        })
    }

    /// The node an agent call's certificate speaks for; check the node id
    /// the call claims with [`Authenticator::check_claim`]. Taken before a
    /// streaming call's first message names the node.
    pub fn agent_identity<T>(&self, req: &Request<T>) -> Result<AgentIdentity, MasterError> {
        let ip = ip_of(req);
        if self.insecure {
            return Ok(AgentIdentity {
                node: None,
                ip,
                revoked: CancellationToken::new(),
            });
        }
        let rec = self.presented(req, "the agent")?;
        if rec.kind != CertKind::Node {
            return Err(self.failed(
                ip,
                MasterError::PermissionDenied(format!(
                    "`{}` holds a user certificate, which cannot speak for a node",
                    rec.name
                )),
            ));
        }
        Ok(AgentIdentity {
            revoked: self.credentials.revocation_of(&rec.fingerprint),
            node: Some(rec.name),
            ip,
        })
    }

    /// Refuses a call whose claimed node id is not its certificate's.
    pub fn check_claim(&self, id: &AgentIdentity, claimed: &str) -> Result<(), MasterError> {
        match &id.node {
            Some(node) if node != claimed => Err(self.failed(
                id.ip,
                MasterError::PermissionDenied(format!(
                    "this certificate is for node `{node}`, not `{}`",
                    claimed.escape_default()
                )),
            )),
            _ => Ok(()),
        }
    }

    /// Checks that an agent call comes with the certificate of `node_id`.
    pub fn node<T>(&self, req: &Request<T>, node_id: &str) -> Result<(), MasterError> {
        let id = self.agent_identity(req)?;
        self.check_claim(&id, node_id)
    }

    /// Charges one registration to the source's rate.
    pub fn registration_allowed<T>(&self, req: &Request<T>) -> Result<(), MasterError> {
        match ip_of(req) {
            Some(ip) if !self.registrations.take(ip) => {
                self.count_refusal("rate_limited");
                Err(MasterError::RateLimited(format!(
                    "too many registrations from {ip}; retry in a moment"
                )))
            }
            _ => Ok(()),
        }
    }
}
