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
/// 0600, and prints where they are. The token, user, node and backup
/// commands talk to the running master with the admin credential;
/// `backup --offline` and `restore` open the configured store themselves.
///
/// Signals: SIGHUP (`systemctl reload masterd`) reads the config file
/// again: `limits`, `pool`, `exec`, `compression`, `reconnect` and
/// `grpc.keepalive.permit_without_stream` take effect at once, other
/// changed sections are logged as needing a restart, a file with an error
/// is refused and the running configuration stays. SIGTERM or SIGINT
/// stops it cleanly. Under systemd (`Type=notify`) it sends READY=1 once
/// listening with its store open (on etcd: once it answers as a standby),
/// RELOADING=1 and READY=1 around a reload, STOPPING=1, and a STATUS line
/// with its role and nodes.
///
/// Exit codes: 0 success, 1 runtime failure, 2 usage error,
/// 78 configuration error.
#[derive(Debug, Parser)]
#[command(name = "masterd", version, long_version = cdn_common::LONG_VERSION, about, long_about)]
pub struct Args {
    /// Configuration file (see master.yml(5)); built-in defaults if omitted.
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the node registry; overrides `data_dir` from the file.
    #[arg(long, global = true, value_name = "DIR")]
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

/// Management commands: most call the running master's AdminService;
/// `backup --offline` and `restore` open the configured store instead.
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
    /// Write a backup of the whole store (nodes, config history, users,
    /// join tokens, certificates, audit, the CA) and this master's exec
    /// session recordings to FILE.
    ///
    /// The running master streams a consistent copy (admin credential);
    /// with --offline the store of master.yml is read directly, for a
    /// stopped master. The file is gzip'd JSON lines with a checksum,
    /// written 0600: it holds the CA's private key.
    ///
    /// Example: `masterd backup /var/backups/masterd.cdnbak`
    Backup {
        /// Where to write the backup.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Read the configured store directly instead of asking the
        /// running master (which holds an embedded store while it runs).
        #[arg(long)]
        offline: bool,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Restore a backup into the store of master.yml, which must be empty.
    ///
    /// Checks FILE, writes everything in it (its recordings into the data
    /// directory), and exits 1 without writing anything when the store
    /// already holds state or a recording exists. Then start masterd on
    /// that store: agents reconnect with their certificates and existing
    /// credentials keep working, as the CA comes back with the rest. The
    /// credential files themselves are not in a backup: a restored
    /// embedded master writes a new admin.credential on its first start.
    ///
    /// Example: `masterd restore masterd.cdnbak -c /etc/masterd/master.yml`
    Restore {
        /// The backup to restore.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

impl Command {
    /// Whether the command opens the configured store itself instead of
    /// calling the running master.
    pub fn opens_the_store(&self) -> bool {
        matches!(
            self,
            Command::Backup { offline: true, .. } | Command::Restore { .. }
        )
    }
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
