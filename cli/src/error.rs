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

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

pub use cdn_common::describe_io;
