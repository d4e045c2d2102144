//! The `agentd` command line, in the library so the man page and
//! completion generator can read it.

use std::path::PathBuf;

use cdn_common::logging::LogFormat;
use clap::Parser;

/// The CDN edge agent: registers with masterd, heartbeats, reports status
/// and reconnects by itself; it never exits because the master is down.
///
/// On first start it enrols: it checks the master against the CA its join
/// token names, makes its own key and gets a certificate for its node id,
/// kept in `data_dir`. Later starts use that certificate (mutual TLS).
///
/// Signals: SIGHUP (`systemctl reload agentd`) reads the config file
/// again and never stops the agent: `heartbeat.*`, `status.*`, `config.*`
/// but `config.path`, `exec.*`, `node.labels` and `compression.accept`
/// take effect at once (changed labels reach the master by a new
/// registration on the open connection); `master.*`, `node.id`,
/// `data_dir` and `config.path` are logged as needing a restart and keep
/// their old values; a file with an error is refused with its line and
/// key and the running configuration stays. SIGTERM or SIGINT tells the
/// master the node goes offline and stops. Under systemd (`Type=notify`)
/// it sends READY=1 once it has its identity and starts dialling (it does
/// not wait for the master), RELOADING=1 and READY=1 around a reload,
/// STOPPING=1, and a STATUS line with its connection state.
///
/// Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage error,
/// 78 configuration error or enrolment refused (a person must act).
#[derive(Debug, Parser)]
#[command(name = "agentd", version, long_version = cdn_common::LONG_VERSION, about, long_about)]
pub struct Args {
    /// Configuration file (see agent.yml(5)); built-in defaults if omitted.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Node id; overrides `node.id` from the file.
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// Join token for the first start; overrides `master.join_token`.
    /// Other local users can read a command line: prefer
    /// `master.join_token_file` or `$AGENTD_JOIN_TOKEN`.
    #[arg(
        long,
        env = "AGENTD_JOIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub join_token: Option<String>,
    /// Where the key and certificate live; overrides `data_dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Talk plaintext to a master started with --insecure (no TLS, no
    /// authentication; loudly logged).
    #[arg(long)]
    pub insecure: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}
