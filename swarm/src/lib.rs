//! `cdn-swarm`: hollow agents. One process runs N real agentd links against
//! one master (each with its own connection, registration, heartbeats,
//! status reports, command stream, config applies and exec), so a single
//! machine can put thousands of agents on a master, as Kubernetes' kubemark
//! does with hollow nodes.

pub mod cli;
pub mod enrol;
pub mod error;
pub mod fdlimit;
pub mod hollow;
pub mod stats;
pub mod swarm;
pub mod template;

pub use error::SwarmError;

/// Log filter unless `RUST_LOG` says otherwise: the swarm's own lines from
/// info, the agent code's per-agent lines from warn (thousands of agents
/// each logging their registration would drown everything else).
pub const DEFAULT_LOG_FILTER: &str = "info,agentd=warn";

/// Async worker threads: as agentd, two, whatever the number of agents.
pub const WORKER_THREADS: usize = 2;
