//! Errors of cdnctl, each rendered as one line on stderr.

/// What went wrong, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The master could not be reached at all.
    #[error("cannot reach master at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// None of several masters could be reached: each address and why.
    #[error("cannot reach any master: {}", .0.iter().map(|(a, r)| format!("{a}: {r}")).collect::<Vec<_>>().join("; "))]
    NoMaster(Vec<(String, String)>),
    /// The connection to the master broke in the middle of a call that
    /// changes something (the master stopped or failed over): what may or
    /// may not have happened, and how to check.
    #[error("{0}")]
    ConnectionLost(String),
    /// The master answered with an error.
    #[error("{0}")]
    Master(String),
    /// Bad input or local trouble.
    #[error("{0}")]
    Local(String),
    /// A usage error found after parsing (exit 2).
    #[error("{0}")]
    Usage(String),
    /// `exec` could not run the command (exit 255, as ssh).
    #[error("{0}")]
    Exec(String),
    /// stdout was closed by the reader (`| head`): exit quietly.
    #[error("broken pipe")]
    BrokenPipe,
}

impl CliError {
    /// From a gRPC status returned by the master at `addr`.
    pub fn from_status(addr: &str, s: &tonic::Status) -> Self {
        use tonic::Code;
        match s.code() {
            // The master answered: it refused to act unrecorded.
            Code::Unavailable if s.message().starts_with(cdn_proto::words::AUDIT_UNWRITABLE) => {
                Self::Master(first_line(s.message()))
            }
            Code::Unavailable => Self::Unreachable {
                addr: addr.to_string(),
                reason: std::error::Error::source(s)
                    .map(cdn_common::tls::root_cause)
                    .unwrap_or_else(|| first_line(s.message())),
            },
            Code::DeadlineExceeded | Code::Cancelled if s.message().contains("Timeout") => {
                Self::Unreachable {
                    addr: addr.to_string(),
                    reason: "timed out".into(),
                }
            }
            _ => Self::Master(first_line(s.message())),
        }
    }
}

/// Whether a stream that was open ended with `s` because the connection
/// to the master broke (the master was killed or stopped, the network
/// dropped, a keepalive PING went unanswered) rather than by the master's
/// own answer. The transport's failures carry their cause as the status's
/// source, or are UNAVAILABLE or UNKNOWN (h2 and I/O errors: "h2 protocol
/// error", broken pipe, connection reset, unexpected EOF); the master's own
/// answers mid-stream are none of these.
pub fn connection_lost(s: &tonic::Status) -> bool {
    use tonic::Code;
    const TRANSPORT_WORDS: [&str; 6] = [
        "h2 protocol error",
        "transport error",
        "broken pipe",
        "connection reset",
        "unexpected eof",
        "error reading a body",
    ];
    let message = s.message().to_lowercase();
    if s.message().starts_with(cdn_proto::words::AUDIT_UNWRITABLE) {
        return false;
    }
    matches!(s.code(), Code::Unavailable | Code::Unknown)
        || std::error::Error::source(s).is_some()
        || TRANSPORT_WORDS.iter().any(|w| message.contains(w))
}

/// What a transport failure `s` says of itself, for a person: the
/// innermost error under it, else its message, else its code.
pub fn status_cause(s: &tonic::Status) -> String {
    let cause = match std::error::Error::source(s) {
        Some(inner) => cdn_common::tls::root_cause(inner),
        None => first_line(s.message()),
    };
    // rustls appends a link to its manual ("…close_notify: https://…").
    let cause = match cause.find(": https://") {
        Some(i) => cause[..i].to_string(),
        None => cause,
    };
    if cause.trim().is_empty() {
        format!("{:?}", s.code())
    } else {
        cause
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

pub use cdn_common::describe_io;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_stream_is_told_apart_from_the_masters_answer() {
        use tonic::Status;
        for lost in [
            Status::unavailable("connection closed"),
            Status::unknown("error reading a body from connection"),
            Status::internal("h2 protocol error: stream no longer needed"),
            Status::cancelled("Broken pipe (os error 32)"),
            Status::from_error(Box::new(std::io::Error::from(
                std::io::ErrorKind::UnexpectedEof,
            ))),
        ] {
            assert!(connection_lost(&lost), "{lost:?}");
        }
        for answer in [
            Status::aborted("the node lost the session before it ended"),
            Status::internal("store write failed"),
            Status::unauthenticated("certificate revoked"),
            Status::resource_exhausted("pool.size reached"),
        ] {
            assert!(!connection_lost(&answer), "{answer:?}");
        }
    }

    #[test]
    fn a_lost_stream_says_what_was_seen() {
        use tonic::Status;
        assert_eq!(
            status_cause(&Status::unavailable("connection closed\nmore")),
            "connection closed"
        );
        let eof = Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed the connection",
        )));
        assert!(
            status_cause(&eof).contains("peer closed the connection"),
            "{}",
            status_cause(&eof)
        );
        assert_eq!(
            status_cause(&Status::unavailable(
                "peer closed connection without sending TLS close_notify: https://docs.rs/rustls/x"
            )),
            "peer closed connection without sending TLS close_notify"
        );
        assert_eq!(status_cause(&Status::unknown("")), "Unknown");
    }
}
