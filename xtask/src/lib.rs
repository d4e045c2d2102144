//! Generated documentation: shell completions (`completions/`) and man pages
//! (`man/`), made from the clap definitions of the binaries so they
//! cannot drift from `--help`, and the configuration reference (the
//! README's key tables and `master.yml(5)`, `agent.yml(5)`), made from
//! [`config_reference`]. `cargo xtask gen` writes them; a test fails when
//! the checked-in files are stale.

pub mod config_reference;

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

/// Every generated file: path relative to the workspace root, and content.
pub fn generated() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "cdnctl.bash"),
        (Shell::Zsh, "_cdnctl"),
        (Shell::Fish, "cdnctl.fish"),
        (Shell::PowerShell, "_cdnctl.ps1"),
        (Shell::Elvish, "cdnctl.elv"),
    ] {
        out.push((
            format!("completions/{file}"),
            cdnctl::completion_script(shell),
        ));
    }
    for cmd in [
        cdnctl::Cli::command(),
        masterd::cli::Args::command(),
        agentd::cli::Args::command(),
        cdn_swarm::cli::Args::command(),
    ] {
        man_pages(cmd, &mut out);
    }
    for file in config_reference::FILES {
        out.push((
            format!("man/{}.5", file.name),
            config_reference::man_page(&file),
        ));
    }
    out
}

/// Every generated file of the checkout at `root`: [`generated`], and the
/// README with its configuration tables made anew.
fn generated_in(root: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut out = generated();
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let fresh = config_reference::readme_with_tables(&readme).map_err(std::io::Error::other)?;
    out.push(("README.md".to_string(), fresh));
    Ok(out)
}

/// The page of `cmd` and of each of its subcommands (`cdnctl-nodes-list.1`).
fn man_pages(cmd: clap::Command, out: &mut Vec<(String, String)>) {
    // The long version names the git commit; pages must not change with it.
    let mut cmd = cmd.long_version(None::<&'static str>);
    cmd.build();
    render(&cmd, cmd.get_name().to_string(), out);
}

fn render(cmd: &clap::Command, name: String, out: &mut Vec<(String, String)>) {
    let page = cmd.clone().name(name.clone());
    let mut buf = Vec::new();
    if clap_mangen::Man::new(page).render(&mut buf).is_ok() {
        out.push((
            format!("man/{name}.1"),
            String::from_utf8_lossy(&buf).into_owned(),
        ));
    }
    for sub in cmd.get_subcommands() {
        // Hidden commands (cdnctl's own `hold-connection`) are not for people.
        if sub.get_name() == "help" || sub.is_hide_set() {
            continue;
        }
        render(sub, format!("{name}-{}", sub.get_name()), out);
    }
}

/// Writes every generated file under `root`; returns how many changed.
pub fn write_all(root: &Path) -> std::io::Result<usize> {
    let mut changed = 0;
    for (rel, content) in generated_in(root)? {
        let path = root.join(&rel);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, content)?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Generated files whose checked-in copy under `root` differs or is
/// missing (a README without its table markers counts as stale).
pub fn stale(root: &Path) -> Vec<String> {
    let files = match generated_in(root) {
        Ok(f) => f,
        Err(e) => return vec![format!("README.md ({e})")],
    };
    files
        .into_iter()
        .filter(|(rel, content)| {
            std::fs::read_to_string(root.join(rel)).ok().as_deref() != Some(content.as_str())
        })
        .map(|(rel, _)| rel)
        .collect()
}
