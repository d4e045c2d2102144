//! How a standby master sends callers to the leader: every call it gets is
//! answered `UNAVAILABLE` with the leader's address in the
//! [`LEADER_METADATA`] trailer (the agent API's address for agents, the
//! admin API's for cdnctl). Agents and cdnctl dial that address next, so
//! nobody has to know which master leads.

/// Metadata key of the leader's address on a standby's refusal.
pub const LEADER_METADATA: &str = "cdn-leader";

/// Metadata key a caller sets when the leader a standby named could not be
/// reached (it was killed; its lease has not run out yet): the standby then
/// holds its answer until the election names another leader (or itself),
/// instead of sending the caller back to a dead address.
pub const UNREACHABLE_LEADER_METADATA: &str = "cdn-unreachable-leader";

/// The refusal a standby answers with; `leader` is empty while no master
/// leads (an election is under way).
pub fn standby_status(leader: &str) -> tonic::Status {
    let message = if leader.is_empty() {
        "this master is a standby and no master leads right now (election under way); retry in a moment".to_string()
    } else {
        format!("this master is a standby; the leader is at {leader}")
    };
    let mut status = tonic::Status::unavailable(message);
    if !leader.is_empty()
        && let Ok(v) = leader.parse()
    {
        status.metadata_mut().insert(LEADER_METADATA, v);
    }
    status
}

/// The refusal of a standby that knows why no master leads (etcd
/// unreachable, no quorum).
pub fn no_leader_status(why: &str) -> tonic::Status {
    tonic::Status::unavailable(format!(
        "this master is a standby and no master leads right now: {why}"
    ))
}

/// The leader's address a standby named in `status`, if it is such a
/// refusal.
pub fn leader_hint(status: &tonic::Status) -> Option<String> {
    if status.code() != tonic::Code::Unavailable {
        return None;
    }
    status
        .metadata()
        .get(LEADER_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_refusal_carries_the_leader() {
        let s = standby_status("10.0.0.2:50051");
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(leader_hint(&s).as_deref(), Some("10.0.0.2:50051"));
        assert!(s.message().contains("10.0.0.2:50051"));
    }

    #[test]
    fn no_leader_no_hint() {
        let s = standby_status("");
        assert_eq!(leader_hint(&s), None);
        assert!(s.message().contains("election"));
        assert_eq!(leader_hint(&tonic::Status::unavailable("x")), None);
    }
}
