//! `cdnctl context list|use|add|remove` and `cdnctl whoami`: the named
//! masters in the config file, and who the master says you are.

use std::path::PathBuf;
use std::process::ExitCode;

use cdn_common::credential::Credential;
use cdn_proto::v1::WhoAmIRequest;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::context::{ContextEntry, FileConfig};
use crate::output::{self, Cell, Format, Human, Listing, Row};
use crate::{CliError, Context};

/// Verbs of `cdnctl context`.
#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List contexts; `*` marks the current one.
    #[command(visible_alias = "ls")]
    List {
        /// Output format.
        #[arg(short, long, default_value = "table", value_parser = output::formats(ContextRow::FORMATS))]
        output: Format,
    },
    /// Make NAME the current context.
    ///
    /// Example: `cdnctl context use prod`
    Use {
        #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete_contexts))]
        name: String,
    },
    /// Add a context from the credential file given with --credential
    /// (`masterd` wrote `admin.credential` in its data directory;
    /// `masterd user add` writes others); --master replaces the address in
    /// it, and may name several masters separated by commas (active and
    /// standbys, tried in order). The credential is copied into the config
    /// file. With --insecure and --master instead: a context for a master
    /// started --insecure.
    ///
    /// Example: `cdnctl context add prod --credential alice.credential --master m1.example:50051,m2.example:50051`
    Add(AddArgs),
    /// Remove a context.
    #[command(visible_alias = "rm")]
    Remove {
        #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete_contexts))]
        name: String,
    },
}

/// Arguments of `context add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Context name.
    pub name: String,
    /// Replace a context of the same name.
    #[arg(long)]
    pub force: bool,
    /// Make it the current context (the first context always is).
    #[arg(long = "use")]
    pub make_current: bool,
}

/// One context of `context list`.
#[derive(Serialize)]
struct ContextRow {
    name: String,
    current: bool,
    master: String,
    user: String,
    role: String,
    insecure: bool,
}

impl Row for ContextRow {
    const EMPTY: &'static str =
        "No contexts yet; add one with `cdnctl context add NAME --credential FILE`.";

    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["CURRENT", "NAME", "MASTER", "USER", "ROLE"]
    }

    fn cells(&self, _wide: bool) -> Vec<Cell> {
        vec![
            Cell::new(if self.current { "*" } else { "" }),
            Cell::new(&self.name),
            Cell::new(&self.master),
            Cell::new(if self.insecure {
                "(insecure)"
            } else {
                &self.user
            }),
            Cell::new(&self.role),
        ]
    }

    /// A bare name, as `kubectl config get-contexts -o name` prints it.
    fn name(&self) -> String {
        self.name.clone()
    }
}

fn file_path(path: Option<PathBuf>) -> Result<PathBuf, CliError> {
    path.ok_or_else(|| {
        CliError::Local("no config directory is known; set CDNCTL_CONFIG to a file path".into())
    })
}

/// Runs a `context` verb (no master needed); `add` takes --credential,
/// --master and --insecure from `sel`.
pub fn run(cmd: ContextCommand, sel: crate::context::Selection<'_>) -> Result<ExitCode, CliError> {
    let (mut file, path) = FileConfig::load()?;
    match cmd {
        ContextCommand::List { output: format } => {
            let rows: Vec<ContextRow> = file
                .contexts
                .iter()
                .map(|(name, c)| ContextRow {
                    name: name.clone(),
                    current: file.current_context.as_deref() == Some(name),
                    master: c.master.clone(),
                    user: c.user.clone(),
                    role: c.role.clone(),
                    insecure: c.insecure,
                })
                .collect();
            output::print(&rows, format)?;
        }
        ContextCommand::Use { name } => {
            if !file.contexts.contains_key(&name) {
                return Err(CliError::Local(format!(
                    "no context `{name}` (`cdnctl context list` shows them)"
                )));
            }
            file.current_context = Some(name.clone());
            file.save(&file_path(path)?)?;
            output::print_text(&format!("current context: {name}"))?;
        }
        ContextCommand::Add(a) => {
            if file.contexts.contains_key(&a.name) && !a.force {
                return Err(CliError::Local(format!(
                    "context `{}` exists; add --force to replace it",
                    a.name
                )));
            }
            let mut entry = match sel.credential {
                Some(p) => {
                    let (cred, warning) =
                        Credential::load(p).map_err(|e| CliError::Local(e.to_string()))?;
                    if let Some(w) = warning {
                        output::print_diagnostic(&format!("cdnctl: warning: {w}"));
                    }
                    ContextEntry::from_credential(cred)
                }
                None if sel.insecure && sel.master.is_some() => ContextEntry {
                    insecure: true,
                    ..Default::default()
                },
                None => {
                    return Err(CliError::Usage(
                        "context add needs --credential FILE (or --insecure --master ADDR for an insecure master)".into(),
                    ));
                }
            };
            if let Some(m) = sel.master {
                entry.master = m.to_string();
            }
            entry.master = crate::context::master_addrs(&entry.master)?.join(",");
            let first = file.contexts.is_empty();
            file.contexts.insert(a.name.clone(), entry);
            if first || a.make_current {
                file.current_context = Some(a.name.clone());
            }
            let path = file_path(path)?;
            file.save(&path)?;
            output::print_text(&format!(
                "context {} added to {}{}",
                a.name,
                path.display(),
                if first || a.make_current {
                    " and made current"
                } else {
                    ""
                }
            ))?;
        }
        ContextCommand::Remove { name } => {
            if file.contexts.remove(&name).is_none() {
                return Err(CliError::Local(format!("no context `{name}`")));
            }
            if file.current_context.as_deref() == Some(&name) {
                file.current_context = None;
            }
            file.save(&file_path(path)?)?;
            output::print_text(&format!("context {name} removed"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `cdnctl whoami`.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = output::formats(WhoAmI::FORMATS))]
    pub output: Format,
}

/// `whoami`: who the master says you are; a sentence in `table`.
#[derive(Serialize)]
struct WhoAmI {
    name: String,
    role: String,
    master: String,
    insecure: bool,
}

impl Listing for WhoAmI {
    fn data(&self) -> impl Serialize {
        self
    }

    fn names(&self) -> Vec<String> {
        vec![format!("user/{}", self.name)]
    }

    fn human(&self, _wide: bool) -> Human {
        Human::Text(format!(
            "{} ({}) at {}{}",
            self.name,
            self.role,
            self.master,
            if self.insecure {
                " (insecure master: nobody is authenticated)"
            } else {
                ""
            }
        ))
    }
}

/// `cdnctl whoami`: the user and role the master sees.
pub async fn whoami(ctx: &Context, a: WhoamiArgs) -> Result<ExitCode, CliError> {
    let r = ctx
        .call(
            WhoAmIRequest {},
            |mut c, r| async move { c.who_am_i(r).await },
        )
        .await?;
    let me = WhoAmI {
        name: r.name,
        role: r.role,
        master: ctx.master(),
        insecure: r.insecure,
    };
    output::print(&me, a.output)?;
    Ok(ExitCode::SUCCESS)
}
