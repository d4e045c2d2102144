//! The `masterd` command line, in the library so the man page and
//! completion generator can read it.

use std::path::PathBuf;

use cdn_common::logging::LogFormat;
use clap::Parser;

/// The CDN control daemon: agents dial in to it; cdnctl talks to it.
///
/// Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage error,
/// 78 configuration error.
#[derive(Debug, Parser)]
#[command(name = "masterd", version, long_version = cdn_common::LONG_VERSION, about, long_about)]
pub struct Args {
    /// Configuration file (see examples/master.yml); built-in defaults if omitted.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the node registry; overrides `data_dir` from the file.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}
