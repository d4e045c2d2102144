//! The agent's identity: its private key (made here, never sent), the
//! certificate the master signed for its node id, and the master's CA, all
//! in `data_dir`. The first start enrols with a join token: fetch the CA the
//! token pins, send a CSR with the token, keep what comes back; while the
//! master is unreachable or busy it retries as the [`Dialer`] says.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdn_common::config::HostPort;
use cdn_common::tls::{JoinToken, TlsError, client_tls, fetch_pinned_ca, write_private};
use cdn_proto::v1::EnrollRequest;
use cdn_proto::v1::agent_service_client::AgentServiceClient;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tracing::info;

use crate::config::AgentConfig;
use crate::dialer::{Dialer, Failure};

const KEY_FILE: &str = "node.key";
const CERT_FILE: &str = "node.crt";
const CA_FILE: &str = "ca.crt";
const NODE_FILE: &str = "node.id";

/// Why the agent has no usable identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Retrying cannot help: a person must act (the message says how).
    #[error("{0}")]
    Fatal(String),
    /// The master could not be reached or answered oddly; retry later.
    #[error("{0}")]
    Transient(String),
    /// The master is a standby and named the leader: enrol there.
    #[error("{message}")]
    Standby { message: String, leader: HostPort },
}

/// What the agent presents and trusts.
#[derive(Debug, Clone)]
pub struct Identity {
    pub node_id: String,
    pub key_pem: String,
    pub cert_pem: String,
    /// The CA the master's certificate is checked against.
    pub ca_pem: String,
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Fatal(format!("{}: {e}", path.display()))
}

fn tls_fatal(e: TlsError) -> IdentityError {
    IdentityError::Fatal(e.to_string())
}

/// The CA from `master.ca_file`, when set.
fn configured_ca(config: &AgentConfig) -> Result<Option<String>, IdentityError> {
    let Some(path) = &config.master.ca_file else {
        return Ok(None);
    };
    let pem = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    cdn_common::tls::pem_certs(&pem).map_err(|e| file_err(path, e))?;
    Ok(Some(pem))
}

/// Loads the identity kept in `config.data_dir`, if the agent enrolled.
pub fn load(config: &AgentConfig, node_id: &str) -> Result<Option<Identity>, IdentityError> {
    let dir = &config.data_dir;
    let paths: Vec<PathBuf> = [KEY_FILE, CERT_FILE, CA_FILE, NODE_FILE]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    if !paths.iter().all(|p| p.exists()) {
        return Ok(None);
    }
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| file_err(p, e));
    let enrolled_as = read(&paths[3])?.trim().to_string();
    if enrolled_as != node_id {
        return Err(IdentityError::Fatal(format!(
            "this agent is enrolled as node `{enrolled_as}` (in {}), not `{node_id}`; a node id is bound to its certificate. Set node.id back, or revoke the old node on the master and remove {} to enrol anew",
            dir.display(),
            dir.display()
        )));
    }
    if let Some(w) = cdn_common::tls::exposure_warning(&paths[0]) {
        tracing::warn!("{w}");
    }
    Ok(Some(Identity {
        node_id: enrolled_as,
        key_pem: read(&paths[0])?,
        cert_pem: read(&paths[1])?,
        ca_pem: match configured_ca(config)? {
            Some(ca) => ca,
            None => read(&paths[2])?,
        },
    }))
}

/// The join token from the flag, `master.join_token` or
/// `master.join_token_file`.
pub fn join_token(
    config: &AgentConfig,
    flag: Option<&str>,
) -> Result<Option<JoinToken>, IdentityError> {
    let text = match (
        flag,
        &config.master.join_token,
        &config.master.join_token_file,
    ) {
        (Some(t), _, _) => t.to_string(),
        (None, Some(t), _) => t.clone(),
        (None, None, Some(path)) => std::fs::read_to_string(path).map_err(|e| file_err(path, e))?,
        (None, None, None) => return Ok(None),
    };
    text.trim().parse().map(Some).map_err(tls_fatal)
}

/// Name to check the master at `addr` against.
pub fn server_name(config: &AgentConfig, addr: &HostPort) -> String {
    config.master.server_name.clone().unwrap_or_else(|| {
        addr.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    })
}

/// Enrols with the master at `addr`: checks the master against the CA the
/// token pins (or `master.ca_file`), sends a CSR for a fresh key with the
/// token, and writes key, certificate and CA to `data_dir` (key 0600).
pub async fn enroll(
    config: &AgentConfig,
    node_id: &str,
    token: &JoinToken,
    addr: &HostPort,
) -> Result<Identity, IdentityError> {
    let dial = config.master.dial_timeout;
    let name = server_name(config, addr);
    let target = addr.to_string();
    let ca_pem = match configured_ca(config)? {
        Some(ca) => ca,
        None => fetch_pinned_ca(&target, &name, &token.ca_fingerprint, dial)
            .await
            .map_err(|e| match e {
                TlsError::Connect { .. } => IdentityError::Transient(e.to_string()),
                TlsError::Untrusted(m) => IdentityError::Fatal(format!(
                    "{m}. If the master serves a certificate of your own CA, set master.ca_file"
                )),
                other => IdentityError::Fatal(other.to_string()),
            })?,
    };
    let key = rcgen::KeyPair::generate()
        .map_err(|e| IdentityError::Fatal(format!("cannot make a key: {e}")))?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, node_id);
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key)
        .and_then(|c| c.pem())
        .map_err(|e| IdentityError::Fatal(format!("cannot make a certificate request: {e}")))?;
    let channel = cdn_common::tls::connect(&target, Some(client_tls(&ca_pem, None, &name)), dial)
        .await
        .map_err(|m| IdentityError::Transient(format!("cannot reach master at {target}: {m}")))?;
    let mut client = AgentServiceClient::new(channel);
    let call = client.enroll(EnrollRequest {
        token: token.to_string(),
        node_id: node_id.to_string(),
        csr_pem: csr,
    });
    let reply = tokio::time::timeout(dial.max(Duration::from_secs(5)), call)
        .await
        .map_err(|_| {
            IdentityError::Transient(format!(
                "master at {target} did not answer the enrolment in time"
            ))
        })?
        .map_err(|s| {
            let msg = format!("enrolment refused by the master: {}", s.message());
            if let Some(leader) =
                cdn_common::leader::leader_hint(&s).and_then(|h| HostPort::parse(&h).ok())
            {
                return IdentityError::Standby {
                    message: msg,
                    leader,
                };
            }
            match s.code() {
                Code::Unauthenticated
                | Code::PermissionDenied
                | Code::AlreadyExists
                | Code::InvalidArgument
                | Code::FailedPrecondition => IdentityError::Fatal(msg),
                _ => IdentityError::Transient(msg),
            }
        })?
        .into_inner();
    if reply.node_id != node_id {
        return Err(IdentityError::Fatal(format!(
            "the master issued a certificate for `{}`, not `{node_id}`",
            reply.node_id
        )));
    }
    let identity = Identity {
        node_id: node_id.to_string(),
        key_pem: key.serialize_pem(),
        cert_pem: reply.cert_pem,
        ca_pem,
    };
    save(&config.data_dir, &identity)?;
    Ok(identity)
}

/// Enrols `node_id` with `token`, trying the master addresses as the
/// [`Dialer`] says (backoff, `max_retries` per address, then the next one;
/// the leader next when a standby names it) for as long as the failures are
/// transient. `permits`, when given, bounds the enrolments of this process
/// in flight at once: a permit is held for each try, not during the delays.
/// `on_retry` hears of each transient failure with the attempt number and
/// the reason.
///
/// Ok(None) when `shutdown` came first; Err only for a refusal retrying
/// cannot help (always [`IdentityError::Fatal`]).
pub async fn enroll_retrying(
    config: &AgentConfig,
    node_id: &str,
    token: &JoinToken,
    permits: Option<&Semaphore>,
    shutdown: &CancellationToken,
    mut on_retry: impl FnMut(u32, String),
) -> Result<Option<Identity>, IdentityError> {
    let mut dialer =
        Dialer::for_master(&config.master).map_err(|e| IdentityError::Fatal(e.to_string()))?;
    while let Some(addr) = dialer.next(shutdown).await {
        let attempt = async {
            let _permit = match permits {
                Some(p) => Some(p.acquire().await.ok()?),
                None => None,
            };
            Some(enroll(config, node_id, token, &addr).await)
        };
        let enrolled = tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            r = attempt => r,
        };
        match enrolled {
            // The permits were closed: the process is stopping.
            None => return Ok(None),
            Some(Ok(id)) => {
                info!(node = %node_id, master = %addr, dir = %config.data_dir.display(), "enrolled: certificate issued and kept");
                return Ok(Some(id));
            }
            Some(Err(IdentityError::Fatal(m))) => return Err(IdentityError::Fatal(m)),
            Some(Err(IdentityError::Transient(m))) => {
                on_retry(dialer.attempt(), m);
                dialer.failed();
            }
            Some(Err(IdentityError::Standby { leader, .. })) => {
                dialer.failed_because(Failure::Standby(Some(leader)));
            }
        }
    }
    Ok(None)
}

/// Writes the identity; the node id last, as the mark of a complete set.
fn save(dir: &Path, id: &Identity) -> Result<(), IdentityError> {
    cdn_common::tls::ensure_private_dir(dir).map_err(|e| file_err(dir, e))?;
    for (file, text) in [
        (KEY_FILE, &id.key_pem),
        (CERT_FILE, &id.cert_pem),
        (CA_FILE, &id.ca_pem),
        (NODE_FILE, &format!("{}\n", id.node_id)),
    ] {
        write_private(&dir.join(file), text.as_bytes()).map_err(tls_fatal)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two distinct loopback addresses nothing listens on.
    fn closed_ports() -> (HostPort, HostPort) {
        let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (x, y) = (bind(), bind());
        let addr = |l: &std::net::TcpListener| HostPort {
            host: "127.0.0.1".into(),
            port: l.local_addr().unwrap().port(),
        };
        (addr(&x), addr(&y))
    }

    #[tokio::test]
    async fn enrolment_retries_each_address_max_retries_times_then_moves_on() {
        let (a, b) = closed_ports();
        let mut config = AgentConfig::default();
        config.master.addr.0 = vec![a.clone(), b.clone()];
        config.master.max_retries = std::num::NonZeroU32::new(2);
        let token: JoinToken = format!("cdn1.{}.id1.secret1", "a".repeat(64))
            .parse()
            .unwrap();
        let shutdown = CancellationToken::new();
        let mut tried = Vec::new();
        let stop = shutdown.clone();
        let enrolled = enroll_retrying(&config, "n1", &token, None, &shutdown, |attempt, m| {
            assert_eq!(attempt as usize, tried.len());
            tried.push(m);
            if tried.len() == 5 {
                stop.cancel();
            }
        });
        let enrolled = tokio::time::timeout(Duration::from_secs(20), enrolled)
            .await
            .expect("enrolment retries in time");
        assert!(matches!(enrolled, Ok(None)), "{enrolled:?}");
        let at = |addr: &HostPort| format!("cannot reach master at {addr}");
        let expected = [&a, &a, &b, &b, &a];
        assert_eq!(tried.len(), expected.len(), "{tried:?}");
        for (m, addr) in tried.iter().zip(expected) {
            assert!(m.contains(&at(addr)), "{m} (expected {addr}) in {tried:?}");
        }
    }
}
