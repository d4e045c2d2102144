//! `cargo xtask gen` regenerates completions/, man/ and the README's
//! configuration tables; `cargo xtask check` fails if any is stale.

use std::path::Path;
use std::process::ExitCode;

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match std::env::args().nth(1).as_deref() {
        Some("gen") => match xtask::write_all(&root) {
            Ok(n) => {
                println!("{n} generated file(s) updated");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask: cannot write: {e}");
                ExitCode::FAILURE
            }
        },
        Some("check") => {
            let stale = xtask::stale(&root);
            if stale.is_empty() {
                println!("completions, man pages and README configuration tables are up to date");
                ExitCode::SUCCESS
            } else {
                eprintln!("stale (run `cargo xtask gen`): {}", stale.join(", "));
                ExitCode::FAILURE
            }
        }
        _ => {
            eprintln!("usage: cargo xtask gen|check");
            ExitCode::from(2)
        }
    }
}
