//! Telling the service manager how a daemon is doing (`sd_notify(3)`):
//! readiness, reloads, shutdown and a one-line status for `systemctl
//! status`. Both daemons run as `Type=notify` units; without
//! `$NOTIFY_SOCKET` (started from a shell, by a test, by another
//! supervisor) every call here does nothing.
//!
//! The messages go through the `sd-notify` crate, one datagram per call.
//! A message that cannot be sent is logged once at warn level and
//! otherwise ignored: a daemon never stops because its supervisor is deaf.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sd_notify::NotifyState;

/// Whether a failed send was already logged (one line, not one per call).
static WARNED: AtomicBool = AtomicBool::new(false);

/// The last `STATUS=` sent, so that periodic updates send only changes.
static LAST_STATUS: Mutex<String> = Mutex::new(String::new());

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(error = %e, "cannot notify the service manager ($NOTIFY_SOCKET)");
    }
}

/// Remembers `status` as the last one sent; false if it was already.
fn is_new(status: &str) -> bool {
    match LAST_STATUS.lock() {
        Ok(last) if *last == status => false,
        Ok(mut last) => {
            status.clone_into(&mut last);
            true
        }
        Err(_) => true,
    }
}

/// `READY=1` with a status line: start-up (or a reload) is finished and
/// the daemon does what its unit promises.
pub fn ready(status: &str) {
    is_new(status);
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// What `STATUS=` says while a reload is under way.
const RELOADING_STATUS: &str = "reloading the configuration";

/// `RELOADING=1` with `MONOTONIC_USEC=` (which systemd 253 and later
/// require beside it): a configuration reload has begun. Follow it with
/// [`reloaded`] once the reload is done, whether it succeeded or not.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status(RELOADING_STATUS),
        ]),
        Err(_) => send(&[
            NotifyState::Reloading,
            NotifyState::Status(RELOADING_STATUS),
        ]),
    }
}

/// `READY=1` after [`reloading`], with the status line in force before
/// the reload (or set during it).
pub fn reloaded() {
    let status = LAST_STATUS.lock().map(|s| s.clone()).unwrap_or_default();
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// `STOPPING=1` with a status line: shutdown has begun.
pub fn stopping(status: &str) {
    is_new(status);
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// `STATUS=`: what `systemctl status` shows under the unit's name. Sent
/// only when it differs from the last status sent.
pub fn status(status: &str) {
    if is_new(status) {
        send(&[NotifyState::Status(status)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_status_lines_count_as_new() {
        assert!(is_new("status test: a"));
        assert!(!is_new("status test: a"));
        assert!(is_new("status test: b"));
    }
}
