//! Why the swarm could not start or had to stop, and the exit code each
//! reason maps to.

/// A reason the swarm stops with an error; each is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// The template, a flag or a derived node id is unusable.
    #[error("configuration error: {0}")]
    Config(String),
    /// `--count` agents cannot fit under the process's file limit.
    #[error(
        "--count {count} needs about {needed} open files but one process may open at most {limit} (hard RLIMIT_NOFILE); run {processes} processes of at most {per_process} agents each, splitting the range with --start-index (for example --count {per_process} --start-index {start}, then --start-index {next})",
        next = start + per_process
    )]
    TooManyAgents {
        count: u64,
        needed: u64,
        limit: u64,
        per_process: u64,
        processes: u64,
        /// The first index of this process's range.
        start: u64,
    },
    /// The file limit could not be read or raised.
    #[error("cannot {action} the open-file limit (RLIMIT_NOFILE): {message}")]
    FileLimit {
        action: &'static str,
        message: String,
    },
    /// The master refused an enrolment in a way retrying cannot fix.
    #[error("{node}: {message}")]
    Enrolment { node: String, message: String },
    /// A directory of the swarm could not be made.
    #[error("cannot create {path}: {message}")]
    DataDir { path: String, message: String },
    /// The async runtime did not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
}

impl SwarmError {
    /// The process exit code: 78 (`EX_CONFIG`) where a person must change
    /// something before a retry can work, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::TooManyAgents { .. } | Self::Enrolment { .. } => {
                cdn_common::EXIT_CONFIG
            }
            Self::FileLimit { .. } | Self::DataDir { .. } | Self::Runtime(_) => 1,
        }
    }
}
