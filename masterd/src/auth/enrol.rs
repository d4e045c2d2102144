//! Enrolment: an agent's first join. It trades a join token for a client
//! certificate the master signs for its node id (only the public key is
//! taken from its CSR).

use std::net::IpAddr;
use std::sync::Arc;

use cdn_common::tls::JoinToken;
use cdn_proto::v1::{EnrollRequest, EnrollResponse};
use tonic::Request;
use tracing::info;

use super::authn::Authenticator;
use super::credentials::Credentials;
use crate::audit::{Audit, Entry};
use crate::error::MasterError;

/// Enrols agents against the credentials.
pub struct Enrolment {
    authn: Arc<Authenticator>,
    credentials: Arc<Credentials>,
    audit: Arc<Audit>,
}

impl Enrolment {
    /// Enrolment checked by `authn`, recorded in `credentials` and `audit`.
    pub fn new(
        authn: Arc<Authenticator>,
        credentials: Arc<Credentials>,
        audit: Arc<Audit>,
    ) -> Self {
        Self {
            authn,
            credentials,
            audit,
        }
    }

    /// First join of an agent: checks the token and signs its CSR.
    pub async fn enroll(
        &self,
        req: &Request<EnrollRequest>,
    ) -> Result<EnrollResponse, MasterError> {
        let ip: Option<IpAddr> = req.remote_addr().map(|a| a.ip());
        let Some(pki) = self.credentials.pki().cloned() else {
            return Err(MasterError::Precondition(
                "this master runs with --insecure: agents need no enrolment; start agentd with --insecure too".into(),
            ));
        };
        // A failure's cost is taken before the token is looked at, so many
        // guesses sent at once cannot all pass; a success gives it back.
        self.authn.pay_up_front(ip)?;
        let r = req.get_ref();
        if let Err(e) = cdn_common::check_node_id(&r.node_id) {
            self.authn.count_refusal("invalid");
            return Err(MasterError::Invalid(e));
        }
        if r.csr_pem.len() > cdn_proto::limits::MAX_CSR_BYTES {
            self.authn.count_refusal("invalid");
            return Err(MasterError::Invalid("certificate request too large".into()));
        }
        let token: JoinToken = r.token.parse().map_err(|e: cdn_common::tls::TlsError| {
            self.authn
                .refused(MasterError::Unauthenticated(e.to_string()))
        })?;
        let slot = match self.credentials.reserve_enrolment(&token, &r.node_id) {
            Ok(s) => s,
            Err(e @ MasterError::AlreadyExists(_)) => {
                self.authn.count_refusal("duplicate");
                return Err(e);
            }
            Err(e) => return Err(self.authn.refused(e)),
        };
        // Signing is CPU work: off the runtime's workers, which every
        // agent's heartbeats share. The audit entry is made durable
        // meanwhile: no certificate is issued that the log cannot name.
        let peer = ip.map(|i| i.to_string()).unwrap_or_default();
        let by = format!("token:{}", token.id);
        let intent = self.audit.intent(Entry {
            user: &by,
            role: "",
            peer: &peer,
            action: "node.enroll.request",
            target: &r.node_id,
            detail: String::new(),
            result: Ok(()),
        });
        let signed = {
            let (csr, node, ttl) = (
                r.csr_pem.clone(),
                r.node_id.clone(),
                self.credentials.client_ttl(),
            );
            let pki = Arc::clone(&pki);
            tokio::task::spawn_blocking(move || pki.sign_node(&csr, &node, ttl))
        };
        let (intent, signed) = tokio::join!(intent, signed);
        // Dropping the slot gives back the name and the token use; the
        // source is not charged for the master's own trouble.
        if let Err(e) = intent {
            self.authn.refund(ip);
            return Err(e);
        }
        let issued = match signed {
            Ok(Ok(issued)) => issued,
            // Dropping the slot gives back the name and the token use.
            Ok(Err(e)) => {
                self.authn.count_refusal("invalid");
                return Err(MasterError::Invalid(e.to_string()));
            }
            Err(e) => return Err(MasterError::Internal(format!("signing task failed: {e}"))),
        };
        let used = self.credentials.enrolled(slot, &issued).await?;
        self.authn.refund(ip);
        info!(node = %r.node_id, token = %used.id, peer = %peer, "node enrolled");
        self.audit
            .record(Entry {
                user: &format!("token:{}", used.id),
                role: "",
                peer: &peer,
                action: "node.enroll",
                target: &r.node_id,
                detail: String::new(),
                result: Ok(()),
            })
            .await;
        Ok(EnrollResponse {
            cert_pem: issued.cert_pem,
            ca_pem: pki.ca_pem().to_string(),
            node_id: r.node_id.clone(),
            not_after_ms: issued.not_after_ms,
        })
    }
}
