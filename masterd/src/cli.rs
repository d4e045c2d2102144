//! The `masterd` command line, in the library so the man page and
//! completion generator can read it.

use std::path::PathBuf;

use cdn_common::logging::LogFormat;
use clap::{Parser, Subcommand};

/// The CDN control daemon: agents dial in to it; cdnctl talks to it.
///
/// Without a command it serves. On first start it creates, in its data
/// directory, a private CA, an admin credential for cdnctl
/// (`admin.credential`) and a join token for agents (`join-token`), all
/// 0600, and prints where they are. The token, user and node commands talk
/// to the running master with the admin credential.
///
/// Exit codes: 0 success, 1 runtime failure, 2 usage error,
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
    /// Serve plaintext gRPC with no authentication at all (loudly logged;
    /// refused on a non-loopback address without --insecure-non-loopback).
    #[arg(long)]
    pub insecure: bool,
    /// Allow --insecure on an address other than loopback.
    #[arg(long, requires = "insecure")]
    pub insecure_non_loopback: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Credential the management commands use (default:
    /// <data_dir>/admin.credential).
    #[arg(long, global = true, value_name = "FILE")]
    pub credential: Option<PathBuf>,
    /// Master address for the management commands (default: the one in the
    /// credential).
    #[arg(long, global = true, value_name = "ADDR")]
    pub master: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Management commands: they call the running master's AdminService.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Join tokens that let agents enrol.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Operator credentials for cdnctl.
    #[command(subcommand)]
    User(UserCommand),
    /// Node certificates.
    #[command(subcommand)]
    Node(NodeCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a join token and print it (shown once).
    ///
    /// Example: `masterd token create --ttl 1h --uses 10`
    Create {
        /// Expire after this long (e.g. 30m, 24h); never when omitted.
        #[arg(long, value_parser = cdn_common::duration::parse, value_name = "DURATION")]
        ttl: Option<std::time::Duration>,
        /// Allow this many enrolments; unlimited when omitted.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        uses: Option<u32>,
        /// Free text shown in `token list`.
        #[arg(long, value_name = "TEXT", default_value = "")]
        description: String,
    },
    /// List join tokens (never their secrets).
    List,
    /// Revoke a join token; certificates it bought stay valid.
    ///
    /// Example: `masterd token revoke k3x9ab2q`
    Revoke {
        /// Token id (the third part of the token, as `token list` shows).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Issue a credential file for a new cdnctl user.
    ///
    /// Example: `masterd user add alice --role operator --out alice.credential`
    Add {
        /// User name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// What the user may do: viewer (list, show), operator (also push
        /// and exec), admin (also tokens, users, revocations, audit).
        #[arg(long, value_parser = ["admin", "operator", "viewer"])]
        role: String,
        /// Where to write the credential (0600; never overwritten).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List users with a valid credential.
    List,
    /// Revoke a user's credential at once.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Revoke a node's certificate: its connection is cut and its name
    /// cannot enrol again until `masterd node allow NAME`.
    ///
    /// Example: `masterd node revoke edge-17`
    Revoke { name: String },
    /// Let a revoked node name enrol again (with a join token).
    ///
    /// Example: `masterd node allow edge-17`
    Allow { name: String },
}
