//! `cdnctl`, the operator's CLI. It talks only to `masterd` (AdminService),
//! over one connection per invocation.

pub mod commands;
pub mod context;
pub mod error;
pub mod exit;
pub mod holder;
pub mod output;
pub mod selector;
pub mod stdio;
pub mod template;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

pub use context::Context;
pub use error::CliError;

/// Default address of the master when nothing else says where it is.
pub const DEFAULT_MASTER: &str = "127.0.0.1:50051";

const AFTER_HELP: &str = "\
Which master and credential: --credential FILE, else --context NAME, else
the current context of the config file ($CDNCTL_CONFIG, or
$XDG_CONFIG_HOME/cdnctl/config.yml); --master overrides the address (one,
or several masters separated by commas; a standby sends cdnctl to the
leader).
First use: `cdnctl context add local --credential <data_dir>/admin.credential`
with the credential masterd wrote on its first start.

Exit codes: 0 success, 1 failure (one-line cause on stderr), 2 usage error.";

/// `cdnctl --help`: commands in groups (clap lists subcommands flat).
const HELP_TEMPLATE: &str = "\
{about-with-newline}
{usage-heading} {usage}

Fleet:
  nodes       List, inspect and delete edge nodes (list --watch follows changes)
  exec        Run a command on one node (like ssh) or many (prefixed output)
  events      Stream what happens: nodes online/offline, pushes, exec sessions
  masters     The masters: leader and standbys, addresses, lease, last backup

Configuration:
  config      Push, roll back and inspect versioned configuration
  rollout     Follow, pause, resume, abort or undo staged rollouts

Access:
  context     Named masters and credentials (like kubectl config contexts)
  whoami      The user and role the master sees for your credential
  audit       Who changed what, when, with what result (admin)

Shell:
  completion  Print shell completions (bash, zsh, fish, powershell, elvish)
  help        Print this message or the help of a command

Options:
{options}{after-help}";

/// Operate a fleet of CDN edge nodes through masterd.
#[derive(Debug, Parser)]
#[command(name = "cdnctl", version, long_version = cdn_common::LONG_VERSION, about, after_help = AFTER_HELP, help_template = HELP_TEMPLATE)]
pub struct Cli {
    /// Master address (host:port), or several separated by commas
    /// (active/standby masters): the first that takes the connection is
    /// used, and a standby's pointer to the leader is followed. Overrides
    /// the context's.
    #[arg(
        long,
        global = true,
        env = "CDNCTL_MASTER",
        value_name = "ADDR[,ADDR...]"
    )]
    pub master: Option<String>,
    /// Use this context of the config file instead of the current one.
    #[arg(long, global = true, env = "CDNCTL_CONTEXT", value_name = "NAME", add = clap_complete::engine::ArgValueCompleter::new(complete_contexts))]
    pub context: Option<String>,
    /// Use this credential file (from masterd) instead of a context.
    #[arg(long, global = true, env = "CDNCTL_CREDENTIAL", value_name = "FILE")]
    pub credential: Option<std::path::PathBuf>,
    /// Plaintext, no credential: only for a master started with --insecure.
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Give up on the master after this long (connecting and each call).
    #[arg(long, global = true, default_value = "10s", value_parser = cdn_common::duration::parse_flag, value_name = "DURATION")]
    pub request_timeout: Duration,
    /// Print table rows without the header line (for scripts).
    #[arg(long, global = true)]
    pub no_headers: bool,
    /// Keep the connection to the master for later invocations (as ssh's
    /// ControlPersist): a background `cdnctl` holds it, reachable only by
    /// you through a Unix socket, and exits after DURATION without a
    /// client. Later invocations with the same master and credential skip
    /// the TLS handshake. 0 (the default): every invocation connects by
    /// itself.
    #[arg(long, global = true, env = "CDNCTL_PERSIST", value_parser = parse_persist, value_name = "DURATION")]
    pub persist: Option<Duration>,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level nouns.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, inspect and delete edge nodes.
    #[command(subcommand)]
    Nodes(commands::nodes::NodesCommand),
    /// Push, roll back and inspect versioned configuration.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Follow, pause, resume, abort or undo staged config rollouts
    /// (`config push --canary 1 --waves 50%,100%`).
    ///
    /// Example: `cdnctl rollout status --watch`
    #[command(subcommand)]
    Rollout(commands::rollout::RolloutCommand),
    /// Run a command on one node (like ssh) or many (prefixed output).
    Exec(commands::exec::ExecArgs),
    /// Named masters and credentials (like kubectl config contexts).
    #[command(subcommand)]
    Context(commands::context::ContextCommand),
    /// Show the user and role the master sees for your credential.
    Whoami(commands::context::WhoamiArgs),
    /// What happens on the master: nodes online/offline, pushes, exec
    /// sessions, token, user and certificate changes.
    ///
    /// Example: `cdnctl events --follow`
    Events(commands::events::EventsArgs),
    /// The masters of the control plane: which one leads and since when,
    /// the standbys, their addresses, store backend and lease, and the last
    /// backup.
    ///
    /// Example: `cdnctl masters -o wide`
    Masters(commands::masters::MastersArgs),
    /// Who pushed, rolled back, ran commands, changed tokens, users and
    /// certificates, and with what result (admin).
    ///
    /// Example: `cdnctl audit --action exec --limit 20`
    Audit(commands::audit::AuditArgs),
    /// Print shell completions (bash, zsh, fish, powershell, elvish).
    ///
    /// Example: `cdnctl completion bash > /etc/bash_completion.d/cdnctl`
    Completion {
        /// Shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Holds a connection to the master for later invocations (started by
    /// cdnctl itself with --persist).
    #[command(name = "hold-connection", hide = true)]
    HoldConnection(HoldArgs),
}

/// `--persist`: a duration, or 0 for none.
fn parse_persist(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    cdn_common::duration::parse_flag(text)
}

/// Arguments of the hidden `hold-connection`.
#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    /// Exit after this long with no client connected.
    #[arg(long, value_parser = cdn_common::duration::parse_flag, value_name = "DURATION")]
    pub idle: Duration,
}

/// The completion script of `shell` for cdnctl: a small registration that
/// asks `cdnctl` itself (with `COMPLETE=SHELL` set) for candidates, so
/// subcommands and flags complete as defined and node names come live from
/// the master of the current context.
pub fn completion_script(shell: clap_complete::Shell) -> String {
    use clap_complete::env::Shells;
    let name = shell.to_string();
    let mut buf = Vec::new();
    if let Some(c) = Shells::builtins().completer(&name) {
        let _ = c.write_registration(COMPLETE_VAR, "cdnctl", "cdnctl", "cdnctl", &mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The variable that turns a cdnctl run into a completion request.
pub const COMPLETE_VAR: &str = "COMPLETE";

/// Answers a completion request from the shell, if this run is one (then
/// the process exits here).
pub fn complete_if_asked() {
    use clap::CommandFactory;
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_VAR)
        .completer("cdnctl")
        .complete();
}

/// Node names for completion, from the master of the usual context
/// (`$CDNCTL_CREDENTIAL`, `$CDNCTL_CONTEXT`, the current context), within
/// a second; nothing when it cannot be asked.
pub fn complete_nodes(current: &std::ffi::OsStr) -> Vec<clap_complete::CompletionCandidate> {
    let prefix = current.to_string_lossy().into_owned();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let master = std::env::var("CDNCTL_MASTER").ok();
    let credential = std::env::var_os("CDNCTL_CREDENTIAL").map(std::path::PathBuf::from);
    let context = std::env::var("CDNCTL_CONTEXT").ok();
    let sel = context::Selection {
        master: master.as_deref(),
        credential: credential.as_deref(),
        context: context.as_deref(),
        insecure: false,
    };
    let nodes = rt.block_on(async {
        let ctx = Context::resolve(sel, Duration::from_secs(1)).ok()?;
        let request = cdn_proto::v1::ListNodesRequest::default();
        let reply = ctx
            .call(request, |mut c, r| async move { c.list_nodes(r).await })
            .await
            .ok()?;
        Some(reply.nodes)
    });
    nodes
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.name.starts_with(&prefix))
        .map(|n| {
            let status = n.status().word();
            clap_complete::CompletionCandidate::new(n.name).help(Some(status.into()))
        })
        .collect()
}

/// Context names for completion (`--context`, `context use|remove`), from
/// the config file (`$CDNCTL_CONFIG` or the default); nothing when it
/// cannot be read.
pub fn complete_contexts(current: &std::ffi::OsStr) -> Vec<clap_complete::CompletionCandidate> {
    match context::config_file() {
        Some(path) => context_candidates(&path, &current.to_string_lossy()),
        None => Vec::new(),
    }
}

/// The contexts of the config file at `path` whose names start with
/// `prefix`, each with its master (and `current` for the current one) as
/// help.
pub fn context_candidates(
    path: &std::path::Path,
    prefix: &str,
) -> Vec<clap_complete::CompletionCandidate> {
    let Ok(file) = context::FileConfig::read(path) else {
        return Vec::new();
    };
    file.contexts
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, c)| {
            let mut help = c.master.clone();
            if file.current_context.as_deref() == Some(name) {
                help.push_str(" (current)");
            }
            clap_complete::CompletionCandidate::new(name).help(Some(help.into()))
        })
        .collect()
}

/// The local user name: the author a master started with --insecure
/// records (a secure master records the credential's user).
pub fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// What `cdnctl -V` and `cdnctl --version` print, answered before clap
/// builds its command tree (see [`version_if_asked`]).
pub fn version_text(long: bool) -> String {
    let version = if long {
        cdn_common::LONG_VERSION
    } else {
        env!("CARGO_PKG_VERSION")
    };
    format!("cdnctl {version}\n")
}

/// Answers `cdnctl --version` or `cdnctl -V` (and nothing else on the
/// line) at once, as clap would, without building the command tree: a
/// version check costs what starting the process costs.
pub fn version_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let (Some(arg), None) = (args.next(), args.next()) else {
        return None;
    };
    let long = match arg.to_str()? {
        "--version" => true,
        "-V" => false,
        _ => return None,
    };
    Some(match output::print_raw(&version_text(long)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::fail(&e),
    })
}

/// Parses the command line as clap does (`--help`, `--version` and usage
/// errors print and exit there), except that an `-o` the command cannot
/// honour ends with cdnctl's own one-line usage error.
pub fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| match output::refused_format(&e) {
        Some(message) => output::fail(&CliError::Usage(message)),
        None => e.exit(),
    })
}

/// Runs the parsed command line and turns the result into an exit code.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return output::fail(&CliError::Local(format!("cannot start runtime: {e}"))),
    };
    let result = runtime.block_on(run(cli));
    // A read of an interactive stdin may still be blocked: do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => output::fail(&e),
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    output::set_no_headers(cli.no_headers);
    if let Command::Completion { shell } = cli.command {
        output::print_raw(&completion_script(shell))?;
        return Ok(ExitCode::SUCCESS);
    }
    let sel = context::Selection {
        master: cli.master.as_deref(),
        credential: cli.credential.as_deref(),
        context: cli.context.as_deref(),
        insecure: cli.insecure,
    };
    let persist = cli
        .persist
        .filter(|d| !d.is_zero())
        .map(|idle| context::Persist {
            idle,
            args: holder_args(&cli),
        });
    if let Command::Context(cmd) = cli.command {
        return commands::context::run(cmd, sel);
    }
    let ctx = Context::resolve(sel, cli.request_timeout)?;
    if let Command::HoldConnection(a) = cli.command {
        return hold(ctx, a.idle).await;
    }
    let ctx = ctx.with_persist(persist);
    match cli.command {
        Command::Nodes(cmd) => commands::nodes::run(&ctx, cmd).await,
        Command::Config(cmd) => commands::config::run(&ctx, cmd).await,
        Command::Rollout(cmd) => commands::rollout::run(&ctx, cmd).await,
        Command::Exec(args) => commands::exec::run(&ctx, args).await,
        Command::Whoami(a) => commands::context::whoami(&ctx, a).await,
        Command::Audit(a) => commands::audit::run(&ctx, a).await,
        Command::Events(a) => commands::events::run(&ctx, a).await,
        Command::Masters(a) => commands::masters::run(&ctx, a).await,
        Command::Completion { .. } | Command::Context(_) | Command::HoldConnection(_) => {
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The global flags that pick the master and credential, as given, for a
/// connection holder to pick the same.
fn holder_args(cli: &Cli) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if let Some(m) = &cli.master {
        args.extend(["--master".into(), m.into()]);
    }
    if let Some(c) = &cli.context {
        args.extend(["--context".into(), c.into()]);
    }
    if let Some(c) = &cli.credential {
        let path = std::path::absolute(c).unwrap_or_else(|_| c.clone());
        args.extend(["--credential".into(), path.into_os_string()]);
    }
    if cli.insecure {
        args.push("--insecure".into());
    }
    args.extend([
        "--request-timeout".into(),
        cdn_common::duration::short(cli.request_timeout).into(),
    ]);
    args
}

/// `cdnctl hold-connection`: connects to the master and serves the
/// connection on the holder's socket until idle.
async fn hold(ctx: Context, idle: Duration) -> Result<ExitCode, CliError> {
    let socket = ctx
        .holder_socket()
        .map_err(|e| CliError::Local(e.to_string()))?;
    let channel = ctx.direct_channel().await?;
    holder::hold(&socket, channel, idle)
        .await
        .map_err(|e| CliError::Local(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_early_version_is_what_clap_prints() {
        let cmd = super::Cli::command();
        assert_eq!(super::version_text(false), cmd.render_version());
        assert_eq!(super::version_text(true), cmd.render_long_version());
    }
}
