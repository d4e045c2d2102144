//! Code that `masterd`, `agentd` and `cdnctl` really share: loading a YAML
//! config file with errors that name file, line and key; duration syntax;
//! logging set-up.

pub mod config;
pub mod credential;
pub mod duration;
pub mod keys;
pub mod leader;
pub mod logging;
pub mod notify;
pub mod recording;
pub mod tls;
pub mod yaml;

/// `--version` text of the binaries: version and the git commit built from.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CDN_GIT_COMMIT"),
    ")"
);

/// Exit code for a configuration error (`EX_CONFIG` from sysexits.h).
pub const EXIT_CONFIG: u8 = 78;

/// Resolves on the first SIGTERM or SIGINT: how the daemons learn to stop.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Current time as unix milliseconds (0 if the clock is before 1970).
/// Raises this process's soft open-file limit to its hard limit (a master
/// holds one socket per agent; so does a swarm); returns the limit now in
/// force.
pub fn raise_fd_limit() -> Result<u64, String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("cannot read the open-file limit: {}", e.desc()))?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .map_err(|e| format!("cannot raise the open-file limit to {hard}: {}", e.desc()))?;
    }
    Ok(hard)
}

pub fn unix_millis_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub use cdn_proto::limits::MAX_NODE_ID_BYTES;

/// A node id is 1 to 63 characters of `[A-Za-z0-9._-]`, starting with a
/// letter or digit; the error says so.
pub fn check_node_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NODE_ID_BYTES
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "node id `{}` is invalid: use 1 to {MAX_NODE_ID_BYTES} letters, digits, '.', '_' or '-', starting with a letter or digit",
            id.escape_default()
        ))
    }
}

/// Node labels as the master takes them: at most `MAX_LABELS`, keys
/// non-empty, keys and values at most `MAX_LABEL_BYTES` (a DNS name). The
/// agent checks its own at start, so a bad label is a config error there
/// rather than a registration refused over and over.
pub fn check_labels<'a>(
    labels: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
) -> Result<(), String> {
    use cdn_proto::limits::{MAX_LABEL_BYTES, MAX_LABELS};
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "{} labels given, at most {MAX_LABELS} allowed",
            labels.len()
        ));
    }
    for (k, v) in labels {
        if k.is_empty() || k.len() > MAX_LABEL_BYTES {
            return Err(format!(
                "label key `{}` is empty or longer than {MAX_LABEL_BYTES} bytes",
                k.escape_default()
            ));
        }
        if v.len() > MAX_LABEL_BYTES {
            return Err(format!(
                "the value of label `{}` is {} bytes, at most {MAX_LABEL_BYTES} allowed",
                k.escape_default(),
                v.len()
            ));
        }
    }
    Ok(())
}

/// A short lowercase description of an I/O error ("connection refused").
pub fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::TimedOut => "timed out".into(),
        K::AddrNotAvailable => "address not available".into(),
        K::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn node_ids() {
        use super::check_node_id as c;
        assert!(c("agent-1").is_ok());
        assert!(c("edge.fra_01").is_ok());
        assert!(c("").is_err());
        assert!(c("-x").is_err());
        assert!(c("a b").is_err());
        assert!(c(&"a".repeat(64)).is_err());
    }
}
