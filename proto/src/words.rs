//! The words operators read and type for the protocol's enums (`online`,
//! `applied`, …): one spelling shared by cdnctl's output and flags and the
//! master's messages.

use crate::v1::{ApplyResult, NodeStatus, OfflineReason};

impl NodeStatus {
    /// `online`, `degraded`, `offline` (`unknown` if unspecified).
    pub fn word(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Degraded => "degraded",
            Self::Offline => "offline",
            Self::Unspecified => "unknown",
        }
    }

    /// Parses [`NodeStatus::word`]'s spelling.
    pub fn from_word(s: &str) -> Option<Self> {
        [Self::Online, Self::Degraded, Self::Offline]
            .into_iter()
            .find(|x| x.word() == s)
    }
}

impl ApplyResult {
    /// `applied`, `failed`, `pending` (`unknown` if unspecified).
    pub fn word(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Failed => "failed",
            Self::Pending => "pending",
            Self::Unspecified => "unknown",
        }
    }
}

impl OfflineReason {
    /// A short snake_case name (`no_heartbeat`), empty if unspecified.
    pub fn word(self) -> &'static str {
        match self {
            Self::Unspecified => "",
            Self::NoHeartbeat => "no_heartbeat",
            Self::AgentShutDown => "agent_shut_down",
            Self::ConnectionLost => "connection_lost",
            Self::StreamNotOpened => "stream_not_opened",
            Self::MasterRestarted => "master_restarted",
            Self::CertificateRevoked => "certificate_revoked",
        }
    }
}

/// How the master's refusal of an action whose audit entry could not be
/// written begins (gRPC UNAVAILABLE): clients tell it apart from a master
/// they cannot reach by it.
pub const AUDIT_UNWRITABLE: &str = "the audit log cannot be written";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for s in [
            NodeStatus::Online,
            NodeStatus::Degraded,
            NodeStatus::Offline,
        ] {
            assert_eq!(NodeStatus::from_word(s.word()), Some(s));
        }
        assert_eq!(NodeStatus::from_word("unknown"), None);
        assert_eq!(ApplyResult::Pending.word(), "pending");
    }
}
