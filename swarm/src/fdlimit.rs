//! The open-file budget: raise the soft RLIMIT_NOFILE to the hard limit and
//! check that the agents asked for fit under it.
//!
//! Each hollow agent holds one TCP connection to the master. Beside those
//! the process needs a fixed reserve (standard streams, the runtime's epoll
//! and wake-up descriptors, the stats and log files), files opened during
//! config applies (bounded by the blocking thread pool, see
//! [`MAX_BLOCKING_THREADS`]), and sockets and files of enrolments in flight
//! (bounded by `--enrol-concurrency`). Exec sessions open pipes on top; they
//! are few in a load test and are left to the reserve.

use crate::error::SwarmError;

/// Descriptors each agent holds for its whole life: its connection.
pub const FDS_PER_AGENT: u64 = 1;
/// Descriptors the process needs whatever the count.
pub const BASE_FDS: u64 = 64;
/// Threads of the blocking pool (config applies, status collection); each
/// apply holds a few files at once, so this bounds their descriptors.
pub const MAX_BLOCKING_THREADS: usize = 64;
/// Files one config apply holds open at once (temporary file, directory,
/// state file, kept copy).
pub const FDS_PER_APPLY: u64 = 4;
/// Descriptors one enrolment holds at once (a socket, a file being written
/// and its directory).
pub const FDS_PER_ENROLMENT: u64 = 3;

/// Descriptors needed by `count` agents with `enrol_concurrency`
/// enrolments in flight.
pub fn needed(count: u64, enrol_concurrency: u64) -> u64 {
    count * FDS_PER_AGENT + reserve(enrol_concurrency)
}

fn reserve(enrol_concurrency: u64) -> u64 {
    BASE_FDS + MAX_BLOCKING_THREADS as u64 * FDS_PER_APPLY + enrol_concurrency * FDS_PER_ENROLMENT
}

/// Checks that `count` agents fit under `limit` open files; the error says
/// how many processes of how many agents would.
pub fn check(count: u64, start: u64, enrol_concurrency: u64, limit: u64) -> Result<(), SwarmError> {
    let needed = needed(count, enrol_concurrency);
    if needed <= limit {
        return Ok(());
    }
    let per_process = limit.saturating_sub(reserve(enrol_concurrency)) / FDS_PER_AGENT;
    if per_process == 0 {
        return Err(SwarmError::FileLimit {
            action: "use",
            message: format!(
                "the hard limit {limit} leaves no room for a single agent; raise it (ulimit -Hn, LimitNOFILE=)"
            ),
        });
    }
    Err(SwarmError::TooManyAgents {
        count,
        needed,
        limit,
        per_process,
        processes: count.div_ceil(per_process),
        start,
    })
}

/// Raises the soft open-file limit to the hard limit; returns the limit now
/// in force.
pub fn raise() -> Result<u64, SwarmError> {
    cdn_common::raise_fd_limit().map_err(|message| SwarmError::FileLimit {
        action: "raise",
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::resource::{Resource, getrlimit};

    #[test]
    fn fifteen_thousand_fit_under_twenty_thousand() {
        assert!(check(15_000, 1, 32, 20_000).is_ok());
    }

    #[test]
    fn too_many_are_refused_with_a_split() {
        let e = check(40_000, 1, 32, 20_000).unwrap_err();
        let SwarmError::TooManyAgents {
            per_process,
            processes,
            ..
        } = e
        else {
            panic!("{e}");
        };
        assert_eq!(per_process, 20_000 - reserve(32));
        assert_eq!(processes, 3);
        assert_eq!(e.exit_code(), 78);
        let line = e.to_string();
        assert!(line.contains("run 3 processes"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn raising_keeps_the_hard_limit() {
        let hard = raise().unwrap();
        let (soft, now_hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((soft, now_hard), (hard, hard));
    }
}
