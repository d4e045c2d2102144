//! The words operators read and type for the protocol's enums (`online`,
//! `applied`, …): one spelling shared by cdnctl's output and flags and the
//! master's messages.

use crate::v1::{
    ApplyResult, NodeStatus, OfflineReason, RolloutAction, RolloutNodeState, RolloutOnFailure,
    RolloutState, RolloutWaveState,
};

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

impl RolloutState {
    /// `running`, `paused`, `rolling_back`, `rolled_back`, `halted`,
    /// `aborted`, `succeeded`, `undone` (`unknown` if unspecified).
    pub fn word(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::RollingBack => "rolling_back",
            Self::RolledBack => "rolled_back",
            Self::Halted => "halted",
            Self::Aborted => "aborted",
            Self::Succeeded => "succeeded",
            Self::Undone => "undone",
        }
    }

    /// Whether the rollout is over: nothing more will change in it (an
    /// undo of a succeeded rollout starts from an ended one).
    pub fn ended(self) -> bool {
        matches!(
            self,
            Self::RolledBack | Self::Halted | Self::Aborted | Self::Succeeded | Self::Undone
        )
    }
}

impl RolloutWaveState {
    /// `pending`, `applying`, `baking`, `passed`, `failed`, `rolled_back`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::Pending => "pending",
            Self::Applying => "applying",
            Self::Baking => "baking",
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }
}

impl RolloutNodeState {
    /// `waiting`, `applying`, `applied`, `failed`, `rolled_back`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::Waiting => "waiting",
            Self::Applying => "applying",
            Self::Applied => "applied",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }
}

impl RolloutOnFailure {
    /// `rollback` (also for unspecified) or `halt`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Unspecified | Self::Rollback => "rollback",
            Self::Halt => "halt",
        }
    }

    /// Parses [`RolloutOnFailure::word`]'s spelling.
    pub fn from_word(s: &str) -> Option<Self> {
        [Self::Rollback, Self::Halt]
            .into_iter()
            .find(|x| x.word() == s)
    }
}

impl RolloutAction {
    /// `pause`, `resume`, `abort`, `undo` (`unknown` if unspecified).
    pub fn word(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Abort => "abort",
            Self::Undo => "undo",
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
        for f in [RolloutOnFailure::Rollback, RolloutOnFailure::Halt] {
            assert_eq!(RolloutOnFailure::from_word(f.word()), Some(f));
        }
        assert!(RolloutState::Succeeded.ended() && !RolloutState::Paused.ended());
    }
}
