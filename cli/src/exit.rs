//! Every exit code cdnctl ends with, decided here: 0 success, 1 failure
//! (also a master that cannot be reached or went away in the middle of a
//! push: retry), 2 usage error; for `exec`, the remote command's own code,
//! 124 when `--timeout` expired and 255 when the command could not be run
//! at all or the connection to the master was lost during the session (as
//! ssh does).

use std::process::ExitCode;

use crate::CliError;

/// Everything worked; also when the reader of stdout went away (`| head`).
pub const SUCCESS: u8 = 0;
/// Something failed; the cause is one line on stderr.
pub const FAILURE: u8 = 1;
/// The command line was wrong (clap's own errors exit 2 as well).
pub const USAGE: u8 = 2;
/// `exec --timeout` expired (as timeout(1)); the agent kills the command.
pub const TIMED_OUT: u8 = 124;
/// `exec` could not run the command: unknown or offline node, refused by
/// the agent's policy, master unreachable; or the connection to the master
/// was lost during the session, so the outcome is unknown (as ssh's 255).
pub const EXEC_NOT_RUN: u8 = 255;

/// The code a run that failed with `e` ends with.
pub fn of_error(e: &CliError) -> ExitCode {
    ExitCode::from(match e {
        CliError::BrokenPipe => SUCCESS,
        CliError::Usage(_) => USAGE,
        CliError::Exec(_) => EXEC_NOT_RUN,
        // A lost connection is as retriable as an unreachable master.
        CliError::Unreachable { .. }
        | CliError::NoMaster(_)
        | CliError::ConnectionLost(_)
        | CliError::Master(_)
        | CliError::Local(_) => FAILURE,
    })
}

/// 0 when every node did what was asked (applied a push, ran a fan-out's
/// command with exit code 0), else 1.
pub fn all_ok(ok: bool) -> ExitCode {
    ExitCode::from(if ok { SUCCESS } else { FAILURE })
}

/// A single-node `exec`'s code: the remote command's status as a shell
/// sees it, its low eight bits (the agent reports 128 + N after signal N,
/// 124 after `--timeout`, 127 and 126 when it could not start the program).
pub fn remote(code: i32) -> ExitCode {
    ExitCode::from((code & 0xff) as u8)
}

/// `exec` gave up by itself after `--timeout` (the node's report is late).
pub fn timed_out() -> ExitCode {
    ExitCode::from(TIMED_OUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_documented_codes() {
        let code = |e: CliError| of_error(&e);
        assert_eq!(code(CliError::Usage("x".into())), ExitCode::from(2));
        assert_eq!(code(CliError::Exec("x".into())), ExitCode::from(255));
        assert_eq!(code(CliError::Master("x".into())), ExitCode::FAILURE);
        assert_eq!(
            code(CliError::ConnectionLost("x".into())),
            ExitCode::FAILURE
        );
        assert_eq!(code(CliError::NoMaster(Vec::new())), ExitCode::FAILURE);
        assert_eq!(code(CliError::BrokenPipe), ExitCode::SUCCESS);
        assert_eq!(remote(256 + 3), ExitCode::from(3));
        assert_eq!(all_ok(false), ExitCode::FAILURE);
    }
}
