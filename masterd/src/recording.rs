//! Exec session recordings in `<data_dir>/recordings/<exec id>/<node>.rec`
//! (format in `cdn_common::recording`): one file per session per node,
//! appended as the session runs and flushed at least every second, so a
//! master killed mid-session loses at most the last second. A session's
//! files are filed under one id: its own exec id, or the first session's
//! of a fan-out (cdnctl sends the same random group key with each of a
//! fan-out's sessions).
//!
//! A write that fails never breaks the session: it is logged, counted in
//! `cdn_exec_recording_errors_total`, and the session's audit record says
//! the recording is incomplete.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use cdn_common::recording::{Event, Header, Stream, encode_bytes};
use dashmap::DashMap;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::config::{RecordingConfig, RecordingMode};
use crate::metrics::Metrics;

/// Longest a written event stays in memory before it reaches the file.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long a fan-out's group key maps to its first session's id.
const GROUP_TTL: Duration = Duration::from_secs(600);
/// Bytes buffered per recording between flushes.
const WRITE_BUFFER: usize = 64 * 1024;
/// Size of the chunks a recording is streamed in.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The recordings directory in `data_dir`.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("recordings")
}

/// Whether `node` can be a file name: a valid node id (the registry takes
/// no other), which keeps any other name out of the file system.
pub fn safe_name(node: &str) -> bool {
    cdn_common::check_node_id(node).is_ok()
}

/// One recording found on disk.
#[derive(Debug, Clone)]
pub struct Found {
    pub header: Header,
    pub path: PathBuf,
    pub bytes: u64,
}

/// The recordings of this master.
pub struct Recordings {
    dir: PathBuf,
    policy: RwLock<RecordingConfig>,
    groups: DashMap<(String, String), (u64, Instant)>,
    /// Ids with a session being recorded (never swept).
    active: DashMap<u64, usize>,
    metrics: Arc<Metrics>,
}

impl Recordings {
    pub fn new(data_dir: &Path, policy: RecordingConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            dir: dir_in(data_dir),
            policy: RwLock::new(policy),
            groups: DashMap::new(),
            active: DashMap::new(),
            metrics,
        }
    }

    /// The directory the recordings are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The policy in force.
    pub fn policy(&self) -> RecordingConfig {
        self.policy.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// A reloaded policy (SIGHUP): sessions that start from now on follow it.
    pub fn set_policy(&self, p: RecordingConfig) {
        if let Ok(mut old) = self.policy.write() {
            *old = p;
        }
    }

    /// The id session `exec_id` of `user` is filed under: the first
    /// session's of its group, or its own.
    pub fn group_id(&self, user: &str, key: &str, exec_id: u64) -> u64 {
        if key.is_empty() {
            return exec_id;
        }
        let now = Instant::now();
        let mut e = self
            .groups
            .entry((user.to_string(), key.to_string()))
            .or_insert((exec_id, now));
        if now.duration_since(e.1) > GROUP_TTL {
            *e = (exec_id, now);
        }
        e.0
    }

    /// Starts recording a session, or None when the policy says off.
    pub fn start(self: &Arc<Self>, mut header: Header) -> Option<Recorder> {
        let policy = self.policy();
        if policy.mode == RecordingMode::Off {
            return None;
        }
        header.cdn_recording = cdn_common::recording::FORMAT_VERSION;
        header.mode = policy.mode.as_str().to_string();
        let id = header.exec_id;
        *self.active.entry(id).or_insert(0) += 1;
        let mut r = Recorder {
            hub: Arc::clone(self),
            id,
            file: None,
            sha: Sha256::new(),
            bytes: 0,
            max: policy.max_bytes,
            stdin: policy.mode == RecordingMode::All,
            t0: Instant::now(),
            last_flush: Instant::now(),
            truncated: false,
            error: None,
            mode: policy.mode,
        };
        match self.create(&header) {
            Ok(f) => {
                r.file = Some(BufWriter::with_capacity(WRITE_BUFFER, f));
                self.metrics.exec_recordings.inc();
                r.append(&cdn_common::recording::encode_header(&header));
            }
            Err(e) => r.failed(format!("cannot create the recording: {e}")),
        }
        Some(r)
    }

    fn create(&self, h: &Header) -> std::io::Result<File> {
        if !safe_name(&h.node) {
            return Err(std::io::Error::other(format!(
                "node name `{}` cannot be a file name",
                h.node
            )));
        }
        let dir = self.dir.join(h.exec_id.to_string());
        cdn_common::tls::create_private_dir(&self.dir)?;
        cdn_common::tls::create_private_dir(&dir)?;
        let open = |name: String| {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .append(true)
                .create_new(true)
                .mode(0o600)
                .open(dir.join(name))
        };
        match open(format!("{}.rec", h.node)) {
            // The same node twice in one group: keep both.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                open(format!("{}.{}.rec", h.node, h.session_id))
            }
            other => other,
        }
    }

    fn finished(&self, id: u64) {
        self.active.remove_if_mut(&id, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }

    /// Recordings on disk, newest id first: those of `exec_id` (0: all)
    /// of `user` (None: anyone's), whose output contains `grep` when it is
    /// not empty. Blocking: call on the blocking pool.
    pub fn list(
        &self,
        exec_id: u64,
        user: Option<&str>,
        grep: &str,
        limit: usize,
    ) -> std::io::Result<Vec<Found>> {
        let mut ids = self.ids()?;
        ids.retain(|&i| exec_id == 0 || i == exec_id);
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        for id in ids {
            let mut files = self.files_of(id);
            files.sort_by(|a, b| a.header.node.cmp(&b.header.node));
            for f in files {
                if user.is_some_and(|u| u != f.header.user) {
                    continue;
                }
                if !grep.is_empty() && !output_contains(&f.path, grep.as_bytes()) {
                    continue;
                }
                out.push(f);
                if limit > 0 && out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    fn ids(&self) -> std::io::Result<Vec<u64>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect())
    }

    fn files_of(&self, id: u64) -> Vec<Found> {
        let Ok(rd) = std::fs::read_dir(self.dir.join(id.to_string())) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".rec")))
            .filter_map(|e| {
                let path = e.path();
                let bytes = e.metadata().ok()?.len();
                let mut first = Vec::new();
                BufReader::new(File::open(&path).ok()?)
                    .take(1024 * 1024)
                    .read_until(b'\n', &mut first)
                    .ok()?;
                let header = cdn_common::recording::parse_header(&first)?;
                Some(Found {
                    header,
                    path,
                    bytes,
                })
            })
            .collect()
    }

    /// Deletes whole recordings (all files of an id) older than the
    /// retention age, then the oldest until the total fits. Blocking.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.groups
            .retain(|_, (_, at)| now.duration_since(*at) <= GROUP_TTL);
        let policy = self.policy().retention;
        let Ok(mut ids) = self.ids() else {
            return;
        };
        ids.sort_unstable();
        let mut sized: Vec<(u64, u64, SystemTime)> = ids
            .into_iter()
            .filter(|id| !self.active.contains_key(id))
            .map(|id| {
                let (mut bytes, mut newest) = (0, SystemTime::UNIX_EPOCH);
                if let Ok(rd) = std::fs::read_dir(self.dir.join(id.to_string())) {
                    for m in rd.flatten().filter_map(|e| e.metadata().ok()) {
                        bytes += m.len();
                        if let Ok(t) = m.modified() {
                            newest = newest.max(t);
                        }
                    }
                }
                (id, bytes, newest)
            })
            .collect();
        let mut total: u64 = sized.iter().map(|s| s.1).sum();
        let too_old = |t: SystemTime| {
            !policy.max_age.is_zero() && t.elapsed().is_ok_and(|age| age > policy.max_age)
        };
        sized.retain(|&(id, bytes, newest)| {
            let over = policy.max_bytes > 0 && total > policy.max_bytes;
            if too_old(newest) || over {
                if self.remove(id) {
                    total -= bytes;
                }
                false
            } else {
                true
            }
        });
    }

    fn remove(&self, id: u64) -> bool {
        match std::fs::remove_dir_all(self.dir.join(id.to_string())) {
            Ok(()) => {
                info!(exec = id, "recording deleted (exec.recording.retention)");
                self.metrics.exec_recordings_deleted.inc();
                true
            }
            Err(e) => {
                warn!(exec = id, error = %e, "cannot delete a recording");
                false
            }
        }
    }
}

/// Whether the output (stdout and stderr, in order) of the recording at
/// `path` contains `needle`. Read line by line, keeping only the end of
/// the output so far that a match could still start in: memory stays at
/// one line, whatever the recording's size.
fn output_contains(path: &Path, needle: &[u8]) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    output_in(BufReader::new(f), needle)
}

fn output_in(mut r: impl BufRead, needle: &[u8]) -> bool {
    if needle.is_empty() {
        return false;
    }
    let mut line = Vec::new();
    // The header.
    if !matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        return false;
    }
    let mut window: Vec<u8> = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if !line.ends_with(b"\n") => return false, // cut short
            Ok(_) => {}
        }
        let Ok((_, Event::Stdout(b) | Event::Stderr(b))) =
            cdn_common::recording::parse_event_line(&line)
        else {
            continue;
        };
        window.extend_from_slice(&b);
        if window.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        let keep = needle.len() - 1;
        if window.len() > keep {
            window.drain(..window.len() - keep);
        }
    }
}

/// What became of one recording, for the session's audit record.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub id: u64,
    pub bytes: u64,
    pub sha256: String,
    pub truncated: bool,
    pub error: String,
}

/// The recording of one running session.
pub struct Recorder {
    hub: Arc<Recordings>,
    id: u64,
    file: Option<BufWriter<File>>,
    sha: Sha256,
    bytes: u64,
    max: u64,
    stdin: bool,
    t0: Instant,
    last_flush: Instant,
    truncated: bool,
    error: Option<String>,
    mode: RecordingMode,
}

impl Recorder {
    /// The id the recording is filed under.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// `output` or `all`.
    pub fn mode(&self) -> &'static str {
        self.mode.as_str()
    }

    pub fn stdout(&mut self, b: &[u8]) {
        self.record(false, |t| encode_bytes(t, Stream::Stdout, b));
    }

    pub fn stderr(&mut self, b: &[u8]) {
        self.record(false, |t| encode_bytes(t, Stream::Stderr, b));
    }

    /// Recorded only when the policy is `all`.
    pub fn stdin(&mut self, b: &[u8]) {
        if self.stdin {
            self.record(false, |t| encode_bytes(t, Stream::Stdin, b));
        }
    }

    pub fn resize(&mut self, cols: u32, rows: u32) {
        self.event(Event::Resize { cols, rows });
    }

    pub fn signal(&mut self, s: i32) {
        self.event(Event::Signal(s));
    }

    pub fn exit(&mut self, code: i32) {
        self.event(Event::Exit(code));
    }

    fn event(&mut self, e: Event) {
        let is_exit = matches!(e, Event::Exit(_));
        self.record(is_exit, |t| cdn_common::recording::encode_event(t, &e));
    }

    /// Appends the line `encode` makes for the time now, unless the byte
    /// limit is reached (the exit is always kept).
    fn record(&mut self, is_exit: bool, encode: impl FnOnce(f64) -> Vec<u8>) {
        if self.file.is_none() || (self.truncated && !is_exit) {
            return;
        }
        let t = self.t0.elapsed().as_secs_f64();
        let line = encode(t);
        // The exit code is always kept, past the limit too.
        if !is_exit && self.bytes + line.len() as u64 > self.max {
            self.truncated = true;
            self.hub.metrics.exec_recordings_truncated.inc();
            let mark = cdn_common::recording::encode_event(t, &Event::Truncated(self.max));
            self.append(&mark);
            return;
        }
        self.append(&line);
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush();
        }
    }

    fn append(&mut self, line: &[u8]) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        match f.write_all(line) {
            Ok(()) => {
                self.sha.update(line);
                self.bytes += line.len() as u64;
                self.hub
                    .metrics
                    .exec_recording_bytes
                    .inc_by(line.len() as u64);
            }
            Err(e) => self.failed(format!("write failed: {e}")),
        }
    }

    /// Hands what is buffered to the file.
    pub fn flush(&mut self) {
        self.last_flush = Instant::now();
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.flush()
        {
            self.failed(format!("write failed: {e}"));
        }
    }

    fn failed(&mut self, error: String) {
        warn!(exec = self.id, error = %error, "exec recording incomplete; the session goes on");
        self.hub.metrics.exec_recording_errors.inc();
        self.file = None;
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Closes the file; what the session's audit record says of it.
    pub fn finish(mut self) -> Summary {
        self.flush();
        self.file = None;
        let sha = std::mem::take(&mut self.sha).finalize();
        Summary {
            id: self.id,
            bytes: self.bytes,
            sha256: format!("{sha:x}"),
            truncated: self.truncated,
            error: self.error.take().unwrap_or_default(),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(f) = self.file.as_mut() {
            let _ = f.flush();
        }
        self.hub.finished(self.id);
    }
}

/// Time between retention sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Applies `exec.recording.retention` now and every [`SWEEP_EVERY`] until
/// `shutdown`.
pub async fn retain(recordings: Arc<Recordings>, shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let r = Arc::clone(&recordings);
        let _ = tokio::task::spawn_blocking(move || r.sweep()).await;
    }
}

/// Recordings per node of one id (for messages).
pub fn nodes_of(found: &[Found]) -> Vec<String> {
    let mut by: HashMap<&str, ()> = HashMap::new();
    let mut out = Vec::new();
    for f in found {
        if by.insert(&f.header.node, ()).is_none() {
            out.push(f.header.node.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn grep_finds_text_split_across_events_and_reads_line_by_line() {
        let mut rec = b"{\"cdn_recording\":1}\n".to_vec();
        rec.extend(encode_bytes(0.1, Stream::Stdout, b"xx nee"));
        rec.extend(encode_bytes(0.2, Stream::Stdin, b"dle typed"));
        rec.extend(encode_bytes(0.3, Stream::Stderr, b"dle yy"));
        assert!(output_in(&rec[..], b"needle"));
        assert!(!output_in(&rec[..], b"typed"), "stdin is not output");
        assert!(!output_in(&rec[..], b"zz"));
        assert!(!output_in(&rec[..], b""));
    }

    use super::*;

    fn recordings(dir: &Path, policy: RecordingConfig) -> Arc<Recordings> {
        Arc::new(Recordings::new(dir, policy, Arc::new(Metrics::default())))
    }

    fn header(id: u64, node: &str) -> Header {
        Header {
            exec_id: id,
            session_id: id,
            user: "ann".into(),
            node: node.into(),
            ..Default::default()
        }
    }

    #[test]
    fn retention_deletes_the_oldest_whole_recordings_past_the_total() {
        let dir = tempfile::tempdir().unwrap();
        let r = recordings(dir.path(), RecordingConfig::default());
        for id in 1..=3 {
            for node in ["a", "b"] {
                let mut rec = r.start(header(id, node)).unwrap();
                rec.stdout(&[b'x'; 400]);
                rec.exit(0);
                let s = rec.finish();
                assert!(s.error.is_empty(), "{}", s.error);
            }
        }
        let all = r.list(0, None, "", 0).unwrap();
        assert_eq!(all.len(), 6);
        let per_id: u64 = all
            .iter()
            .filter(|f| f.header.exec_id == 3)
            .map(|f| f.bytes)
            .sum();
        let mut policy = RecordingConfig::default();
        policy.retention.max_bytes = 2 * per_id + per_id / 2;
        r.set_policy(policy);
        r.sweep();
        let left = r.list(0, None, "", 0).unwrap();
        let ids: Vec<u64> = left.iter().map(|f| f.header.exec_id).collect();
        assert_eq!(ids, [3, 3, 2, 2], "id 1 went, whole");
        let mode = |p: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&left[0].path), 0o600);
        assert_eq!(mode(left[0].path.parent().unwrap()), 0o700);
    }

    #[test]
    fn a_running_session_is_never_swept_and_a_group_shares_one_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut policy = RecordingConfig::default();
        policy.retention.max_bytes = 1;
        let r = recordings(dir.path(), policy);
        let mut running = r.start(header(5, "a")).unwrap();
        running.stdout(b"still here\n");
        running.flush();
        r.sweep();
        assert_eq!(r.list(5, None, "still", 0).unwrap().len(), 1);
        drop(running);
        r.sweep();
        assert!(r.list(5, None, "", 0).unwrap().is_empty());

        assert_eq!(r.group_id("ann", "k", 7), 7);
        assert_eq!(r.group_id("ann", "k", 8), 7);
        assert_eq!(r.group_id("bob", "k", 9), 9, "keys are per user");
        assert_eq!(r.group_id("ann", "", 10), 10);
    }

    #[test]
    fn off_records_nothing_and_unsafe_node_names_never_reach_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let off = RecordingConfig {
            mode: RecordingMode::Off,
            ..Default::default()
        };
        assert!(recordings(dir.path(), off).start(header(1, "a")).is_none());
        let r = recordings(dir.path(), RecordingConfig::default());
        let rec = r.start(header(2, "../escape")).unwrap();
        let s = rec.finish();
        assert!(s.error.contains("cannot be a file name"), "{}", s.error);
        assert!(!dir.path().join("escape.rec").exists());
        assert!(!safe_name(".hidden") && safe_name("edge-1.fra"));
    }
}
