//! `cdnctl` entry point: parse, run, exit with the command's code.

use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(code) = cdnctl::version_if_asked() {
        return code;
    }
    cdnctl::complete_if_asked();
    match cdnctl::parse() {
        Ok(cli) => cdnctl::main(cli),
        Err(code) => code,
    }
}
