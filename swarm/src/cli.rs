//! The `cdn-swarm` command line, in the library so the man page generator
//! can read it.

use std::path::PathBuf;
use std::time::Duration;

use cdn_common::config::HostPort;
use cdn_common::logging::LogFormat;
use clap::Parser;

/// Hollow agents: runs N real agents in one process against one master, to
/// load-test masterd (as Kubernetes' kubemark does with hollow nodes).
///
/// Every hollow agent is the real agentd link: its own TCP connection and
/// TLS session, registration, heartbeats, status reports, command stream,
/// config applies into its own directory and `cdnctl exec` running real
/// processes. Node ids are PREFIX plus a zero-padded number
/// (`hollow-00001`, `hollow-00002` …); each agent keeps its key,
/// certificate and managed config file in DATA_DIR/<node id>.
///
/// Each agent holds one socket, and the process may open at most as many
/// files as its hard RLIMIT_NOFILE allows (the soft limit is raised to it at
/// start): a --count that cannot fit is refused with the number of processes
/// to split it into (use --start-index to give each its own range).
///
/// Exit codes: 0 clean stop (SIGTERM or SIGINT: every agent tells the master
/// it goes offline), 1 runtime failure, 2 usage error, 78 configuration
/// error, a --count above the file limit, or an enrolment the master refused.
#[derive(Debug, Parser)]
#[command(name = "cdn-swarm", version, long_version = cdn_common::LONG_VERSION, about, long_about)]
pub struct Args {
    /// agent.yml used as the template of every agent (master address,
    /// heartbeat, status, exec, config file name …); built-in defaults if
    /// omitted. Its `node.id` and `data_dir` are replaced per agent, and
    /// `config.path` keeps only its file name, placed in the agent's
    /// directory.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Master address; overrides `master.addr` of the template.
    #[arg(long, value_name = "HOST:PORT", value_parser = HostPort::parse)]
    pub master: Option<HostPort>,
    /// Number of hollow agents to run.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Node id prefix; agent n is named PREFIX plus n, zero-padded to at
    /// least five digits so the ids sort.
    #[arg(long, value_name = "PREFIX", default_value = "hollow-")]
    pub prefix: String,
    /// Number of the first agent, so several processes can split a range
    /// (`--count 10000 --start-index 10001` runs hollow-10001 … hollow-20000).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub start_index: u64,
    /// Root of the per-agent directories (DIR/<node id>: key, certificate,
    /// managed config file); kept, so a second run reuses the enrolled
    /// certificates. Default: a new temporary directory, removed at exit.
    /// Pointing it at a tmpfs such as /dev/shm avoids the cost of the fsyncs
    /// every enrolment and config apply makes.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Join token every agent enrols with on its first start, as agentd
    /// does; overrides `master.join_token` of the template. Other local
    /// users can read a command line: prefer `$AGENTD_JOIN_TOKEN` or
    /// `master.join_token_file`.
    #[arg(
        long,
        env = "AGENTD_JOIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub join_token: Option<String>,
    /// Talk plaintext to a master started with --insecure (no TLS, no
    /// enrolment; loudly logged).
    #[arg(long)]
    pub insecure: bool,
    /// Spread the agents' starts evenly over this time (`30s`, `2m`);
    /// 0 starts them all at once: a connect storm.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_ramp)]
    pub ramp: Duration,
    /// Enrolments in flight at once (only agents without a certificate
    /// enrol).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub enrol_concurrency: u32,
    /// Write statistics as JSON to FILE (replaced atomically) every
    /// --stats-interval and at exit: agents registered, time until all
    /// registered, registration and heartbeat round-trip percentiles,
    /// reconnects, heartbeat failures, memory per agent.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// How often the --stats file is rewritten.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = cdn_common::duration::parse)]
    pub stats_interval: Duration,
    /// Log line format. Per-agent events of the agent code are logged from
    /// level warn up (`RUST_LOG` overrides), each with its node id.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A duration as `--ramp` takes it: `0` or a duration with a unit.
fn parse_ramp(text: &str) -> Result<Duration, String> {
    if text.trim().trim_end_matches('s') == "0" {
        return Ok(Duration::ZERO);
    }
    cdn_common::duration::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn ramp_takes_zero_and_durations() {
        assert_eq!(parse_ramp("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_ramp("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_ramp("30s").unwrap(), Duration::from_secs(30));
        assert!(parse_ramp("soon").is_err());
    }
}
