//! The `agentd` command line, in the library so the man page and
//! completion generator can read it.

use std::path::PathBuf;

use cdn_common::logging::LogFormat;
use clap::Parser;

/// The CDN edge agent: registers with masterd, heartbeats, reports status
/// and reconnects by itself; it never exits because the master is down.
///
/// Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage error,
/// 78 configuration error.
#[derive(Debug, Parser)]
#[command(name = "agentd", version, long_version = cdn_common::LONG_VERSION, about, long_about)]
pub struct Args {
    /// Configuration file (see examples/agent.yml); built-in defaults if omitted.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Node id; overrides `node.id` from the file.
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}
