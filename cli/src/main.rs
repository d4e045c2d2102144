//! `cdnctl` entry point: parse, run, exit with the command's code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cdnctl::complete_if_asked();
    cdnctl::main(cdnctl::Cli::parse())
}
