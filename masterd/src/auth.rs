//! Who is calling, and what they may do.
//!
//! Every caller but an enrolling agent presents a client certificate the
//! master issued; the master knows each by its sha256 fingerprint, so
//! revoking one is removing it from [`Auth`]'s table, effective on the next
//! call. Node certificates speak only for their node; user certificates
//! carry a role (viewer < operator < admin) checked on every AdminService
//! call. Join tokens buy an agent its first certificate. Failed
//! authentications and registrations are rate-limited per source address.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdn_common::credential::Credential;
use cdn_common::tls::{JoinToken, fingerprint, secret_hash};
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use tonic::Request;
use tracing::{info, warn};

use crate::error::MasterError;
use crate::events::Events;
use crate::metrics::{Metrics, ReasonLabel};
use crate::pki::Pki;
use crate::store::{AuditRecord, CertRecord, NodeStore, TokenRecord};

/// Name of the operator credential made on first start.
pub const ADMIN_CREDENTIAL: &str = "admin.credential";
/// Name of the file holding the join token made on first start.
pub const JOIN_TOKEN_FILE: &str = "join-token";
/// User name of the credential made on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// What a user may do; each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// List and show.
    Viewer,
    /// Also push configs, roll back and exec.
    Operator,
    /// Also manage tokens, users, revocations and read the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, MasterError> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(MasterError::Invalid(format!(
                "unknown role `{}` (expected admin, operator or viewer)",
                other.escape_default()
            ))),
        }
    }
}

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

/// A token bucket per source address; its rate can change at run time
/// (SIGHUP).
struct Limiter {
    /// Tokens per second and bucket size.
    params: std::sync::RwLock<(f64, f64)>,
    buckets: DashMap<IpAddr, (f64, Instant)>,
}

/// Above this many tracked addresses, full buckets are forgotten.
const MAX_TRACKED_SOURCES: usize = 100_000;

impl Limiter {
    fn new(per_second: f64, burst: u32) -> Self {
        Self {
            params: std::sync::RwLock::new((per_second, f64::from(burst.max(1)))),
            buckets: DashMap::new(),
        }
    }

    fn set(&self, per_second: f64, burst: u32) {
        if let Ok(mut p) = self.params.write() {
            *p = (per_second, f64::from(burst.max(1)));
        }
    }

    fn params(&self) -> (f64, f64) {
        self.params.read().map(|p| *p).unwrap_or((0.0, 1.0))
    }

    /// Tokens in a bucket last seen at `at` with `tokens`, now.
    fn refill((tokens, at): (f64, Instant), now: Instant, (rate, burst): (f64, f64)) -> f64 {
        (tokens + now.duration_since(at).as_secs_f64() * rate).min(burst)
    }

    /// Tokens left for `ip` now.
    fn level(&self, ip: IpAddr, now: Instant) -> f64 {
        let p = self.params();
        self.buckets
            .get(&ip)
            .map_or(p.1, |b| Self::refill(*b, now, p))
    }

    /// Whether `ip` has a token left, without taking it.
    fn has(&self, ip: IpAddr) -> bool {
        self.params().0 <= 0.0 || self.level(ip, Instant::now()) >= 1.0
    }

    /// Takes a token; false when there is none. Atomic per source.
    fn take(&self, ip: IpAddr) -> bool {
        let p = self.params();
        if p.0 <= 0.0 {
            return true;
        }
        let now = Instant::now();
        if self.buckets.len() > MAX_TRACKED_SOURCES {
            self.buckets.retain(|_, b| Self::refill(*b, now, p) < p.1);
        }
        let mut bucket = self.buckets.entry(ip).or_insert((p.1, now));
        let level = Self::refill(*bucket, now, p);
        let ok = level >= 1.0;
        *bucket = (if ok { level - 1.0 } else { level }, now);
        ok
    }

    /// Returns a token taken by [`Limiter::take`] (the attempt succeeded).
    fn give_back(&self, ip: IpAddr) {
        let (_, burst) = self.params();
        if let Some(mut b) = self.buckets.get_mut(&ip) {
            b.0 = (b.0 + 1.0).min(burst);
        }
    }

    /// Seconds until `ip` has a token again.
    fn wait_secs(&self, ip: IpAddr) -> u64 {
        let rate = self.params().0;
        let missing = 1.0 - self.level(ip, Instant::now());
        if missing <= 0.0 || rate <= 0.0 {
            0
        } else {
            (missing / rate).ceil() as u64
        }
    }
}

/// The security state of the master.
pub struct Auth {
    insecure: bool,
    pki: Option<Pki>,
    store: Arc<dyn NodeStore>,
    /// Valid certificates by fingerprint.
    certs: DashMap<String, CertRecord>,
    /// One token per certificate in use, cancelled when it is revoked.
    in_use: DashMap<String, CancellationToken>,
    /// Revoked node names that may not enrol again until an admin allows
    /// it, with their revoked certificates.
    barred: DashMap<String, Vec<CertRecord>>,
    /// Join tokens by id; the mutex also orders every security write.
    tokens: Mutex<BTreeMap<String, TokenRecord>>,
    failures: Limiter,
    registrations: Limiter,
    metrics: Arc<Metrics>,
    client_ttl: Duration,
    /// The CA clients check the master's certificate with: the master's own,
    /// or the last certificate of `tls.cert_file`'s chain.
    server_ca_pem: Option<String>,
    events: Arc<Events>,
}

fn ip_of<T>(req: &Request<T>) -> Option<IpAddr> {
    req.remote_addr().map(|a| a.ip())
}

/// The source address of a request, for logs and the audit log.
pub fn peer_of<T>(req: &Request<T>) -> String {
    ip_of(req).map(|i| i.to_string()).unwrap_or_default()
}

fn now_ms() -> i64 {
    cdn_common::unix_millis_now()
}

fn store_err(e: crate::store::StoreError) -> MasterError {
    MasterError::Store(e)
}

impl Auth {
    /// Loads issued certificates and tokens. `pki` is None when the master
    /// runs with `--insecure`: then nobody is authenticated.
    pub fn load(
        pki: Option<Pki>,
        store: Arc<dyn NodeStore>,
        limits: &crate::config::LimitsConfig,
        client_ttl: Duration,
        metrics: Arc<Metrics>,
        events: Arc<Events>,
    ) -> Result<Self, MasterError> {
        let certs = DashMap::new();
        let barred: DashMap<String, Vec<CertRecord>> = DashMap::new();
        for c in store.load_certs().map_err(store_err)? {
            if c.revoked_ms == 0 {
                certs.insert(c.fingerprint.clone(), c);
            } else if c.kind == "node" && !c.readmitted {
                barred.entry(c.name.clone()).or_default().push(c);
            }
        }
        let tokens = store
            .load_tokens()
            .map_err(store_err)?
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        Ok(Self {
            insecure: pki.is_none(),
            pki,
            store,
            certs,
            in_use: DashMap::new(),
            barred,
            tokens: Mutex::new(tokens),
            failures: Limiter::new(
                f64::from(limits.auth_failures_per_minute) / 60.0,
                limits.auth_failure_burst,
            ),
            registrations: Limiter::new(f64::from(limits.register_rate), limits.register_burst),
            metrics,
            client_ttl,
            server_ca_pem: None,
            events,
        })
    }

    /// New limits from a reloaded config (SIGHUP).
    pub fn set_limits(&self, limits: &crate::config::LimitsConfig) {
        self.failures.set(
            f64::from(limits.auth_failures_per_minute) / 60.0,
            limits.auth_failure_burst,
        );
        self.registrations
            .set(f64::from(limits.register_rate), limits.register_burst);
    }

    /// The event bus audited actions are published on.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Clients trust `pem` for the master's certificate (the operator's own
    /// certificate is served), instead of the master's CA.
    pub fn set_server_ca(&mut self, pem: String) {
        self.server_ca_pem = Some(pem);
    }

    /// The CA a credential carries to check the master with.
    pub fn server_ca_pem(&self) -> String {
        match (&self.server_ca_pem, &self.pki) {
            (Some(pem), _) => pem.clone(),
            (None, Some(pki)) => pki.ca_pem().to_string(),
            (None, None) => String::new(),
        }
    }

    /// Whether the master runs without TLS and authentication.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// The CA and server identity (None when insecure).
    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// Counts a refusal in `cdn_refused_requests_total{reason}`.
    pub fn count_refusal(&self, reason: &'static str) {
        self.metrics
            .refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A failed authentication from `ip`: counted, charged to its budget.
    fn failed(&self, ip: Option<IpAddr>, e: MasterError) -> MasterError {
        self.count_refusal(match &e {
            MasterError::PermissionDenied(_) => "permission_denied",
            _ => "unauthenticated",
        });
        if let Some(ip) = ip {
            self.failures.take(ip);
        }
        e
    }

    /// A failed enrolment whose cost was taken up front: counted only.
    fn failed_paid(&self, e: MasterError) -> MasterError {
        self.count_refusal(match &e {
            MasterError::PermissionDenied(_) => "permission_denied",
            _ => "unauthenticated",
        });
        e
    }

    /// Refuses outright a source that failed too often recently.
    fn check_budget(&self, ip: Option<IpAddr>) -> Result<(), MasterError> {
        match ip {
            Some(ip) if !self.failures.has(ip) => {
                self.count_refusal("rate_limited");
                Err(MasterError::RateLimited(format!(
                    "too many failed authentications from {ip}; try again in {}s",
                    self.failures.wait_secs(ip).max(1)
                )))
            }
            _ => Ok(()),
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
            && self.certs.contains_key(&fp)
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
        match self.certs.get(&fp) {
            Some(rec) if rec.not_after_ms > now_ms() => Ok(rec.clone()),
            Some(rec) => {
                self.check_budget(ip)?;
                let e = MasterError::Unauthenticated(format!(
                    "the certificate of {} `{}` has expired; issue a new one",
                    rec.kind, rec.name
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
        if rec.kind != "user" {
            return Err(self.failed(
                ip_of(req),
                MasterError::PermissionDenied(format!(
                    "`{}` holds a node certificate, which cannot call the operator API",
                    rec.name
                )),
            ));
        }
        let role = Role::parse(&rec.role).unwrap_or(Role::Viewer);
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
            revoked: self.revocation_of(&rec.fingerprint),
            name: rec.name,
            role,
            peer,
        })
    }

    /// A token cancelled when the certificate `fingerprint` is revoked.
    fn revocation_of(&self, fingerprint: &str) -> CancellationToken {
        self.in_use
            .entry(fingerprint.to_string())
            .or_default()
            .child_token()
    }

    /// The node an agent call's certificate speaks for; check the node id
    /// the call claims with [`Auth::check_claim`]. Taken before a streaming
    /// call's first message names the node.
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
        if rec.kind != "node" {
            return Err(self.failed(
                ip,
                MasterError::PermissionDenied(format!(
                    "`{}` holds a user certificate, which cannot speak for a node",
                    rec.name
                )),
            ));
        }
        Ok(AgentIdentity {
            revoked: self.revocation_of(&rec.fingerprint),
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

    /// First join of an agent: checks the token and signs its CSR.
    pub async fn enroll(
        &self,
        req: &Request<cdn_proto::v1::EnrollRequest>,
    ) -> Result<cdn_proto::v1::EnrollResponse, MasterError> {
        let ip = ip_of(req);
        let Some(pki) = &self.pki else {
            return Err(MasterError::Precondition(
                "this master runs with --insecure: agents need no enrolment; start agentd with --insecure too".into(),
            ));
        };
        // A failure's cost is taken before the token is looked at, so many
        // guesses sent at once cannot all pass; a success gives it back.
        if let Some(ip) = ip
            && !self.failures.take(ip)
        {
            self.count_refusal("rate_limited");
            return Err(MasterError::RateLimited(format!(
                "too many failed authentications from {ip}; try again in {}s",
                self.failures.wait_secs(ip).max(1)
            )));
        }
        let r = req.get_ref();
        if let Err(e) = cdn_common::check_node_id(&r.node_id) {
            self.count_refusal("invalid");
            return Err(MasterError::Invalid(e));
        }
        if r.csr_pem.len() > cdn_proto::limits::MAX_CSR_BYTES {
            self.count_refusal("invalid");
            return Err(MasterError::Invalid("certificate request too large".into()));
        }
        let token: JoinToken = match r.token.parse() {
            Ok(t) => t,
            Err(e) => return Err(self.failed_paid(MasterError::Unauthenticated(e.to_string()))),
        };
        // The token's use count, the signature and the durable write are
        // one critical section; its fsync must not stall the runtime's
        // worker (heartbeats of every agent share it).
        let (used, issued) = blocking(|| {
            let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
            let rec = match tokens.get(&token.id) {
                Some(t) if t.secret_hash == secret_hash(&token.secret) => t.clone(),
                _ => {
                    drop(tokens);
                    return Err(self.failed_paid(MasterError::Unauthenticated(
                        "join token not valid (unknown id or wrong secret)".into(),
                    )));
                }
            };
            let refusal = if rec.revoked {
                Some(format!("join token {} was revoked", rec.id))
            } else if rec.expires_ms != 0 && rec.expires_ms <= now_ms() {
                Some(format!(
                    "join token {} expired {}",
                    rec.id,
                    crate::error::fmt_ms(rec.expires_ms)
                ))
            } else if rec.max_uses != 0 && rec.used >= rec.max_uses {
                Some(format!(
                    "join token {} is used up ({} of {} uses)",
                    rec.id, rec.used, rec.max_uses
                ))
            } else {
                None
            };
            if let Some(why) = refusal {
                drop(tokens);
                return Err(self.failed_paid(MasterError::Unauthenticated(why)));
            }
            if self.barred.contains_key(&r.node_id) {
                drop(tokens);
                return Err(self.failed_paid(MasterError::PermissionDenied(format!(
                        "node `{}` was revoked; it may enrol again only after an admin runs `masterd node allow {}`",
                        r.node_id, r.node_id
                    )),
                ));
            }
            if let Some(held) = self
                .certs
                .iter()
                .find(|c| c.kind == "node" && c.name == r.node_id)
            {
                self.count_refusal("duplicate");
                return Err(MasterError::AlreadyExists(format!(
                    "node `{}` is already enrolled (certificate issued {}); a second machine cannot take its name. To enrol a replacement, run `masterd node revoke {}` first",
                    r.node_id,
                    crate::error::fmt_ms(held.issued_ms),
                    r.node_id
                )));
            }
            let issued = pki
                .sign_node(&r.csr_pem, &r.node_id, self.client_ttl)
                .map_err(|e| {
                    self.count_refusal("invalid");
                    MasterError::Invalid(e.to_string())
                })?;
            let mut used = rec;
            used.used += 1;
            let cert = CertRecord {
                fingerprint: issued.fingerprint.clone(),
                kind: "node".into(),
                name: r.node_id.clone(),
                role: String::new(),
                issued_ms: now_ms(),
                not_after_ms: issued.not_after_ms,
                issued_by: format!("token:{}", used.id),
                revoked_ms: 0,
                readmitted: false,
            };
            self.store
                .put_security(std::slice::from_ref(&used), std::slice::from_ref(&cert))
                .map_err(store_err)?;
            tokens.insert(used.id.clone(), used.clone());
            self.certs.insert(cert.fingerprint.clone(), cert);
            Ok((used, issued))
        })?;
        if let Some(ip) = ip {
            self.failures.give_back(ip);
        }
        info!(node = %r.node_id, token = %used.id, peer = ?ip, "node enrolled");
        self.audit(
            &format!("token:{}", used.id),
            "",
            &ip.map(|i| i.to_string()).unwrap_or_default(),
            "node.enroll",
            &r.node_id,
            String::new(),
            Ok(()),
        )
        .await;
        Ok(cdn_proto::v1::EnrollResponse {
            cert_pem: issued.cert_pem,
            ca_pem: pki.ca_pem().to_string(),
            node_id: r.node_id.clone(),
            not_after_ms: issued.not_after_ms,
        })
    }

    /// Makes a join token; returns its text (shown once) and its record.
    pub fn create_token(
        &self,
        created_by: &str,
        ttl: Option<Duration>,
        max_uses: u32,
        description: &str,
    ) -> Result<(String, TokenRecord), MasterError> {
        let Some(pki) = &self.pki else {
            return Err(MasterError::Precondition(
                "this master runs with --insecure: there are no join tokens".into(),
            ));
        };
        let token = JoinToken::generate(pki.ca_fingerprint());
        let created = now_ms();
        let rec = TokenRecord {
            id: token.id.clone(),
            secret_hash: secret_hash(&token.secret),
            description: description.to_string(),
            created_ms: created,
            created_by: created_by.to_string(),
            expires_ms: ttl.map_or(0, |t| created + t.as_millis() as i64),
            max_uses,
            used: 0,
            revoked: false,
        };
        let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
        self.store
            .put_security(std::slice::from_ref(&rec), &[])
            .map_err(store_err)?;
        tokens.insert(rec.id.clone(), rec.clone());
        Ok((token.to_string(), rec))
    }

    /// Every join token, oldest first.
    pub fn tokens(&self) -> Vec<TokenRecord> {
        let mut v: Vec<TokenRecord> = self
            .tokens
            .lock()
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|t| t.created_ms);
        v
    }

    /// Revokes a join token (certificates it bought stay valid).
    pub fn revoke_token(&self, id: &str) -> Result<(), MasterError> {
        let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
        let Some(rec) = tokens.get(id) else {
            return Err(MasterError::NotFound(format!(
                "no join token with id `{}`",
                id.escape_default()
            )));
        };
        let mut rec = rec.clone();
        rec.revoked = true;
        self.store
            .put_security(std::slice::from_ref(&rec), &[])
            .map_err(store_err)?;
        tokens.insert(rec.id.clone(), rec);
        Ok(())
    }

    /// Issues a credential to user `name`; returns the record and the
    /// certificate and key PEM.
    pub fn add_user(
        &self,
        issued_by: &str,
        name: &str,
        role: Role,
    ) -> Result<(CertRecord, String, String), MasterError> {
        let Some(pki) = &self.pki else {
            return Err(MasterError::Precondition(
                "this master runs with --insecure: there are no user credentials".into(),
            ));
        };
        cdn_common::check_node_id(name)
            .map_err(|e| MasterError::Invalid(e.replace("node id", "user name")))?;
        let _turn = self.tokens.lock().map_err(|_| poisoned())?;
        if self
            .certs
            .iter()
            .any(|c| c.kind == "user" && c.name == name)
        {
            return Err(MasterError::AlreadyExists(format!(
                "user `{name}` already exists; remove it first to issue a new credential"
            )));
        }
        let (issued, key) = pki
            .issue_user(name, self.client_ttl)
            .map_err(|e| MasterError::Internal(e.to_string()))?;
        let rec = CertRecord {
            fingerprint: issued.fingerprint,
            kind: "user".into(),
            name: name.to_string(),
            role: role.as_str().to_string(),
            issued_ms: now_ms(),
            not_after_ms: issued.not_after_ms,
            issued_by: issued_by.to_string(),
            revoked_ms: 0,
            readmitted: false,
        };
        self.store
            .put_security(&[], std::slice::from_ref(&rec))
            .map_err(store_err)?;
        self.certs.insert(rec.fingerprint.clone(), rec.clone());
        Ok((rec, issued.cert_pem, key))
    }

    /// Valid user certificates, by name.
    pub fn users(&self) -> Vec<CertRecord> {
        let mut v: Vec<CertRecord> = self
            .certs
            .iter()
            .filter(|c| c.kind == "user")
            .map(|c| c.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Revokes every valid certificate of `kind` named `name`; returns how
    /// many. Effective on the next call made with them.
    pub fn revoke(&self, kind: &str, name: &str) -> Result<u32, MasterError> {
        let _turn = self.tokens.lock().map_err(|_| poisoned())?;
        let now = now_ms();
        let revoked: Vec<CertRecord> = self
            .certs
            .iter()
            .filter(|c| c.kind == kind && c.name == name)
            .map(|c| {
                let mut c = c.clone();
                c.revoked_ms = now;
                c
            })
            .collect();
        if revoked.is_empty() {
            return Err(MasterError::NotFound(format!(
                "no valid certificate for {kind} `{}`",
                name.escape_default()
            )));
        }
        self.store.put_security(&[], &revoked).map_err(store_err)?;
        for c in &revoked {
            self.certs.remove(&c.fingerprint);
            // Sessions opened with it end now.
            if let Some((_, t)) = self.in_use.remove(&c.fingerprint) {
                t.cancel();
            }
        }
        if kind == "node" {
            self.barred
                .entry(name.to_string())
                .or_default()
                .extend(revoked.iter().cloned());
        }
        Ok(revoked.len() as u32)
    }

    /// Lets a revoked node name enrol again.
    pub fn allow_node(&self, name: &str) -> Result<(), MasterError> {
        let _turn = self.tokens.lock().map_err(|_| poisoned())?;
        let Some(records) = self.barred.get(name).map(|r| r.clone()) else {
            return Err(MasterError::NotFound(format!(
                "node `{}` is not barred from enrolling",
                name.escape_default()
            )));
        };
        let cleared: Vec<CertRecord> = records
            .into_iter()
            .map(|mut c| {
                c.readmitted = true;
                c
            })
            .collect();
        self.store.put_security(&[], &cleared).map_err(store_err)?;
        self.barred.remove(name);
        Ok(())
    }

    /// Records a mutating call in the audit log. A failure to write is
    /// logged, not returned: the call itself already happened.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit(
        &self,
        user: &str,
        role: &str,
        peer: &str,
        action: &str,
        target: &str,
        detail: String,
        result: Result<(), String>,
    ) {
        self.events
            .publish(action, target, user, detail.clone(), result.is_ok());
        let mut entry = AuditRecord {
            id: 0,
            time_ms: now_ms(),
            user: user.to_string(),
            role: role.to_string(),
            peer: peer.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
            success: result.is_ok(),
            error: result.err().unwrap_or_default(),
        };
        let store = Arc::clone(&self.store);
        let written = tokio::task::spawn_blocking(move || {
            let r = store.append_audit(&mut entry);
            (r, entry)
        })
        .await;
        match written {
            Ok((Ok(()), _)) => {}
            Ok((Err(e), entry)) => {
                warn!(error = %e, action = %entry.action, user = %entry.user, "cannot write the audit log")
            }
            Err(e) => warn!(error = %e, "audit writer failed"),
        }
    }

    /// Records a call of `caller` (see [`Auth::audit`]).
    pub async fn audit_call(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        detail: String,
        result: Result<(), String>,
    ) {
        self.audit(
            &caller.name,
            caller.role.as_str(),
            &caller.peer,
            action,
            target,
            detail,
            result,
        )
        .await;
    }

    /// The newest audit entries, newest first.
    pub async fn audit_log(
        &self,
        limit: usize,
        user: String,
        action: String,
    ) -> Result<Vec<AuditRecord>, MasterError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            store.load_audit(limit, &|r: &AuditRecord| {
                (user.is_empty() || r.user == user)
                    && (action.is_empty()
                        || r.action == action
                        || r.action.starts_with(&format!("{action}.")))
            })
        })
        .await
        .map_err(|e| MasterError::Internal(e.to_string()))?
        .map_err(store_err)
    }

    /// First start: writes the admin credential and a join token into
    /// `data_dir`, 0600. Later starts: a missing admin credential is made
    /// anew (how an operator with the host's root recovers a lost one), and
    /// an existing one is pointed at the address the master now listens on.
    /// Returns the files written.
    pub fn bootstrap(
        &self,
        data_dir: &Path,
        admin_addr: &str,
        first_start: bool,
    ) -> Result<Vec<PathBuf>, MasterError> {
        if self.pki.is_none() {
            return Ok(Vec::new());
        }
        let mut written = Vec::new();
        let cred_path = data_dir.join(ADMIN_CREDENTIAL);
        let internal = |e: cdn_common::tls::TlsError| MasterError::Internal(e.to_string());
        match Credential::load(&cred_path) {
            Ok((mut cred, _)) => {
                if cred.master != admin_addr {
                    cred.master = admin_addr.to_string();
                    cred.save(&cred_path).map_err(internal)?;
                }
            }
            Err(_) => {
                let name = self.free_admin_name();
                let (rec, cert, key) = self.add_user("masterd", &name, Role::Admin)?;
                let cred = Credential {
                    user: rec.name,
                    role: rec.role,
                    master: admin_addr.to_string(),
                    server_name: None,
                    ca: self.server_ca_pem(),
                    cert,
                    key,
                };
                cred.save(&cred_path).map_err(internal)?;
                written.push(cred_path);
            }
        }
        if first_start {
            let (token, _) = self.create_token("masterd", None, 0, "made on first start")?;
            let path = data_dir.join(JOIN_TOKEN_FILE);
            cdn_common::tls::write_private(&path, format!("{token}\n").as_bytes())
                .map_err(internal)?;
            written.push(path);
        }
        Ok(written)
    }

    /// `admin`, or `admin-2`, `admin-3`… when that name already holds a
    /// certificate.
    fn free_admin_name(&self) -> String {
        let taken = |n: &str| self.certs.iter().any(|c| c.kind == "user" && c.name == n);
        if !taken(BOOTSTRAP_ADMIN) {
            return BOOTSTRAP_ADMIN.into();
        }
        (2..)
            .map(|i| format!("{BOOTSTRAP_ADMIN}-{i}"))
            .find(|n| !taken(n))
            .unwrap_or_else(|| BOOTSTRAP_ADMIN.into())
    }
}

fn poisoned() -> MasterError {
    MasterError::Internal("security state lock poisoned".into())
}

/// Runs blocking work (a lock held across an fsync) on a multi-threaded
/// runtime's worker after handing its other tasks to the rest of the pool;
/// elsewhere, directly.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(Role::parse("operator").unwrap(), Role::Operator);
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn the_limiter_refills_over_time() {
        let l = Limiter::new(1000.0, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.take(ip) && l.take(ip));
        assert!(!l.take(ip));
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.has(ip));
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.take(other));
    }
}
