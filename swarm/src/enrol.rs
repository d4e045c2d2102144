//! Each hollow agent's identity, exactly as agentd gets its own: the
//! certificate kept in the agent's directory, or a first enrolment with the
//! join token, retried by agentd's own enrolment loop (its dialer's backoff
//! and address rotation) while the master is unreachable or busy and given
//! up at once when the master refuses (a person must act).
//!
//! What the swarm adds: enrolments in flight are bounded
//! (`--enrol-concurrency`; each makes a key, two TLS handshakes and several
//! fsynced writes), and retries are counted for the statistics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use agentd::AgentConfig;
use agentd::identity::{self, Identity};
use cdn_common::tls::JoinToken;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Why an agent has no identity.
#[derive(Debug)]
pub enum NoIdentity {
    /// Shutdown came first.
    Stopped,
    /// Retrying cannot help; the message says what to do.
    Refused(String),
}

/// Enrols the agents of the swarm, a bounded number at a time.
pub struct Enroller {
    token: Option<JoinToken>,
    insecure: bool,
    permits: Semaphore,
    retries: AtomicU64,
    last_retry_reason: Mutex<Option<String>>,
}

impl Enroller {
    /// An enroller using `token` (None: agents without a certificate cannot
    /// start), at most `concurrency` at once; with `insecure` no agent has
    /// or needs an identity.
    pub fn new(token: Option<JoinToken>, insecure: bool, concurrency: usize) -> Self {
        Self {
            token,
            insecure,
            permits: Semaphore::new(concurrency),
            retries: AtomicU64::new(0),
            last_retry_reason: Mutex::new(None),
        }
    }

    /// Enrolment attempts that failed transiently and were retried.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Why the latest retried attempt failed, if any did.
    pub fn last_retry_reason(&self) -> Option<String> {
        self.last_retry_reason.lock().ok().and_then(|r| r.clone())
    }

    /// The identity of agent `node_id`: None with `--insecure`; the one in
    /// its directory; or a new one from the master. The bool says whether
    /// this call enrolled.
    pub async fn identity(
        &self,
        config: &AgentConfig,
        node_id: &str,
        shutdown: &CancellationToken,
    ) -> Result<(Option<Identity>, bool), NoIdentity> {
        if self.insecure {
            return Ok((None, false));
        }
        match identity::load(config, node_id) {
            Ok(Some(id)) => return Ok((Some(id), false)),
            Ok(None) => {}
            Err(e) => return Err(NoIdentity::Refused(e.to_string())),
        }
        let Some(token) = &self.token else {
            return Err(NoIdentity::Refused(format!(
                "not enrolled yet (no certificate in {}) and no join token: pass --join-token, set $AGENTD_JOIN_TOKEN or master.join_token in the template (`masterd token create` makes one)",
                config.data_dir.display()
            )));
        };
        let enrolled = identity::enroll_retrying(
            config,
            node_id,
            token,
            Some(&self.permits),
            shutdown,
            |attempt, m| {
                debug!(attempt, "enrolment failed: {m}; retrying");
                self.retries.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.last_retry_reason.lock() {
                    *last = Some(m);
                }
            },
        )
        .await;
        match enrolled {
            Ok(Some(id)) => Ok((Some(id), true)),
            Ok(None) => Err(NoIdentity::Stopped),
            Err(e) => Err(NoIdentity::Refused(e.to_string())),
        }
    }
}
