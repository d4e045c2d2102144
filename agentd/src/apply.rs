//! Applying pushed config versions to the managed file, atomically.
//!
//! One owner task applies versions in order. An apply checks the content
//! (hash, YAML), checks free space, writes a temporary file in the same
//! directory, fsyncs it, renames it over the file and fsyncs the directory,
//! so a crash leaves the old file or the new one, never a mix. If the reload
//! command fails, the previous file is put back the same way. Applied
//! versions are kept in `.<file>.versions/` and the applied version and hash
//! in `.<file>.state`, both beside the file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cdn_proto::Version;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::ManagedConfig;
use crate::health::{HealthChecker, HealthResult};
use crate::hook::HookError;

/// Largest decompressed config accepted, bytes.
pub const MAX_CONFIG_BYTES: u64 = cdn_proto::limits::MAX_CONFIG_BYTES as u64;
/// Depth of the queue of versions waiting to be applied.
const QUEUE_DEPTH: usize = 16;
/// A version that failed is answered with the same failure, without a second
/// attempt, when it arrives again this soon: a push and a heartbeat-driven
/// fetch of one version often cross, and a second reload of a known-bad
/// config helps nobody. Later arrivals (the periodic refetch, a re-push after
/// the operator freed disk space) are tried again.
const REPEAT_FAILURE_WINDOW: Duration = Duration::from_secs(5);

/// Why an apply failed, worded for the operator.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    #[error("content does not match its hash (expected {expected}, got {actual})")]
    HashMismatch { expected: String, actual: String },
    #[error("cannot decompress ({0})")]
    Decode(String),
    #[error("config too large ({0} bytes, at most {MAX_CONFIG_BYTES})")]
    TooLarge(u64),
    #[error("YAML parse error{}: {message}", location(*line, *column))]
    Parse {
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error(
        "not enough disk space in {dir}: {free} bytes free, {needed} needed (config.min_free_bytes {min_free} + file)"
    )]
    NoSpace {
        dir: String,
        free: u64,
        needed: u64,
        min_free: u64,
    },
    #[error("permission denied writing {0}")]
    PermissionDenied(String),
    #[error("disk full while writing {0}; the previous file is unchanged")]
    DiskFull(String),
    #[error("cannot write {path}: {message}")]
    Io { path: String, message: String },
    /// The reload command failed; the file was put back as it was.
    #[error("{cause}; {undo}{}", tail(cause.stderr()))]
    Reload { cause: ReloadError, undo: Undo },
}

/// How a reload command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    #[error("reload command failed with exit code {code}")]
    Failed { code: i32, stderr: String },
    #[error("reload command killed by signal {signal}")]
    Killed { signal: i32, stderr: String },
    #[error("reload command timed out after {}", cdn_common::duration::short(*after))]
    Timeout { after: Duration },
    #[error("cannot run reload command: {0}")]
    Spawn(String),
}

impl ReloadError {
    /// What the command wrote to stderr, if anything was kept.
    fn stderr(&self) -> &str {
        match self {
            Self::Failed { stderr, .. } | Self::Killed { stderr, .. } => stderr,
            Self::Timeout { .. } | Self::Spawn(_) => "",
        }
    }
}

/// What was done with the file after a failed reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undo {
    #[error("previous config restored")]
    Restored,
    /// It was the first config the node got: there was nothing to restore.
    #[error("the new file removed (there was no previous config)")]
    Removed,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l} column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

fn tail(stderr: &str) -> String {
    let t = stderr.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {}", t.replace('\n', " | "))
    }
}

pub use cdn_common::tls::sha256_hex;

/// What is applied now, as recorded in the state file (JSON; the version
/// as a number, 0 for none, as it has always been written).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// None before the first apply.
    #[serde(with = "cdn_proto::version::or_zero")]
    pub version: Option<Version>,
    /// sha256 (hex) of the applied content.
    pub hash: String,
}

/// A version to apply.
#[derive(Debug, Clone)]
pub struct Request {
    pub version: Version,
    pub hash: String,
    pub content: bytes::Bytes,
    pub encoding: String,
}

/// The outcome, for the acknowledgement.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub version: Version,
    pub hash: String,
    pub result: Result<(), ApplyError>,
    pub elapsed: Duration,
    /// On success, the health command's result after the reload (None
    /// when this applier has no health checker).
    pub health: Option<HealthResult>,
}

/// Where the managed file and its bookkeeping live.
#[derive(Debug, Clone)]
struct Paths {
    file: PathBuf,
    dir: PathBuf,
    versions: PathBuf,
    state: PathBuf,
    /// Names the guard of a running reload command (see `guard::Marker`).
    reload_marker: PathBuf,
}

impl Paths {
    fn new(file: &Path) -> Self {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config".into());
        Self {
            file: file.to_path_buf(),
            versions: dir.join(format!(".{name}.versions")),
            state: dir.join(format!(".{name}.state")),
            reload_marker: dir.join(format!(".{name}.reload")),
            dir,
        }
    }
}

impl Paths {
    /// Deletes temporary files an agent killed while writing left behind
    /// (`.edge.yml.tmp-<pid>`, and those of the state file and the kept
    /// versions): full-size copies nobody will rename. Files of a process
    /// that still runs are left alone.
    fn remove_stale_temp_files(&self) {
        let Some(name) = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
        else {
            return;
        };
        let prefix = format!(".{name}");
        for dir in [&self.dir, &self.versions] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                let in_versions = dir == &self.versions;
                let ours = in_versions || file_name.starts_with(&prefix);
                let Some(pid) = file_name
                    .rsplit_once(".tmp-")
                    .and_then(|(_, pid)| pid.parse::<i32>().ok())
                else {
                    continue;
                };
                if !ours || process_runs(pid) {
                    continue;
                }
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        info!(file = %entry.path().display(), "removed a temporary file left by an interrupted write")
                    }
                    Err(e) => {
                        warn!(file = %entry.path().display(), error = %e, "cannot remove a leftover temporary file")
                    }
                }
            }
        }
    }
}

/// Whether process `pid` runs (other than this one).
fn process_runs(pid: i32) -> bool {
    if pid == std::process::id() as i32 || pid <= 0 {
        return false;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Cached hash of the file on disk, keyed by its size and mtime.
#[derive(Debug, Default)]
struct DiskHash {
    key: Option<(u64, std::time::SystemTime)>,
    hash: String,
}

/// Applies config versions; cheap to clone.
#[derive(Clone)]
pub struct Applier {
    /// The settings in force; replaced whole by [`Applier::reconfigure`].
    cfg: Arc<RwLock<Arc<ManagedConfig>>>,
    paths: Arc<Paths>,
    applied: Arc<Mutex<Applied>>,
    disk: Arc<Mutex<DiskHash>>,
    queue: mpsc::Sender<(Request, mpsc::Sender<Outcome>)>,
    /// Runs the health command after each successful apply.
    health: Option<HealthChecker>,
}

impl Applier {
    /// Starts the owner task; reads the applied version from the state file.
    /// No health command runs (see [`Applier::start_with_health`]).
    pub fn start(
        cfg: ManagedConfig,
        shutdown: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        Self::start_inner(cfg, None, shutdown, tasks)
    }

    /// As [`Applier::start`], and starts the health checker following
    /// `live` (`config.health_*`): it runs after every successful apply,
    /// before the outcome is handed back, and every interval besides.
    pub fn start_with_health(
        live: crate::config::LiveConfig,
        shutdown: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let cfg = live.borrow().config.clone();
        Self::start_inner(cfg, Some(live), shutdown, tasks)
    }

    /// The latest health result; always "no check" without a checker.
    pub fn health(&self) -> tokio::sync::watch::Receiver<HealthResult> {
        match &self.health {
            Some(h) => h.watch(),
            None => crate::health::no_checker(),
        }
    }

    fn start_inner(
        cfg: ManagedConfig,
        live: Option<crate::config::LiveConfig>,
        shutdown: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let paths = Paths::new(&cfg.path);
        paths.remove_stale_temp_files();
        // A reload of an earlier run may still be alive: never two at once.
        crate::guard::stop_leftover(&paths.reload_marker);
        let applied = std::fs::read(&paths.state)
            .ok()
            .and_then(|b| serde_json::from_slice::<Applied>(&b).ok())
            .unwrap_or_default();
        let (queue, mut rx) = mpsc::channel::<(Request, mpsc::Sender<Outcome>)>(QUEUE_DEPTH);
        let health = live.map(|live| {
            HealthChecker::start(
                live,
                paths.file.clone(),
                applied.version,
                shutdown.clone(),
                tasks,
            )
        });
        let me = Self {
            health,
            cfg: Arc::new(RwLock::new(Arc::new(cfg))),
            paths: Arc::new(paths),
            applied: Arc::new(Mutex::new(applied)),
            disk: Arc::new(Mutex::new(DiskHash::default())),
            queue,
        };
        let worker = me.clone();
        tasks.spawn(async move {
            let mut last_failure: Option<(Instant, Outcome)> = None;
            loop {
                let (req, reply) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = rx.recv() => match next {
                        Some(x) => x,
                        None => return,
                    },
                };
                if let Some((at, failed)) = &last_failure
                    && at.elapsed() < REPEAT_FAILURE_WINDOW
                    && failed.version == req.version
                    && failed.hash == req.hash
                {
                    let _ = reply.send(failed.clone()).await;
                    continue;
                }
                if let Some(checker) = &worker.health {
                    checker.hold().await;
                }
                let (mut outcome, keep) = worker.apply(req).await;
                // Before the master hears of the apply: it gates on this.
                if let Some(checker) = &worker.health {
                    if outcome.result.is_ok() {
                        outcome.health = Some(checker.check_after_apply(outcome.version).await);
                    } else {
                        checker.release().await;
                    }
                }
                last_failure = outcome
                    .result
                    .is_err()
                    .then(|| (Instant::now(), outcome.clone()));
                let _ = reply.send(outcome).await;
                // Off the acknowledged path, before the next apply: the note
                // of the applied version and a copy for local rollback.
                if let Some((version, content)) = keep {
                    worker.save_state().await;
                    worker.keep_copy(version, content).await;
                }
            }
        });
        me
    }

    /// The settings in force.
    fn cfg(&self) -> Arc<ManagedConfig> {
        match self.cfg.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `cfg` in force from the next apply on (a reloaded agent.yml);
    /// an apply under way finishes with the settings it started with.
    /// `config.path` is not changed: the file, its kept versions and its
    /// state stay where the applier started (a new path needs a restart).
    pub fn reconfigure(&self, mut cfg: ManagedConfig) {
        cfg.path = self.paths.file.clone();
        match self.cfg.write() {
            Ok(mut c) => *c = Arc::new(cfg),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(cfg),
        }
    }

    /// The applied version and its hash.
    pub fn applied(&self) -> Applied {
        self.applied.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Queues `req`; the outcome arrives on `reply`.
    pub async fn submit(&self, req: Request, reply: mpsc::Sender<Outcome>) -> bool {
        self.queue.send((req, reply)).await.is_ok()
    }

    /// Queues `req` if there is room; false when the queue is full.
    pub fn try_submit(&self, req: Request, reply: mpsc::Sender<Outcome>) -> bool {
        self.queue.try_send((req, reply)).is_ok()
    }

    /// sha256 of the managed file as it is now ("" if absent).
    pub fn disk_hash(&self) -> String {
        let path = &self.paths.file;
        let Ok(meta) = std::fs::metadata(path) else {
            return String::new();
        };
        let key = (meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH));
        let Ok(mut cache) = self.disk.lock() else {
            return String::new();
        };
        if cache.key != Some(key) {
            cache.hash = std::fs::read(path)
                .map(|b| sha256_hex(&b))
                .unwrap_or_default();
            cache.key = Some(key);
        }
        cache.hash.clone()
    }

    /// Applies `req`; on success also returns the content to keep a copy of.
    async fn apply(&self, req: Request) -> (Outcome, Option<(Version, Vec<u8>)>) {
        let started = Instant::now();
        let (version, hash) = (req.version, req.hash.clone());
        let encoding = if req.encoding.is_empty() {
            "identity".to_string()
        } else {
            req.encoding.clone()
        };
        let wire_bytes = req.content.len();
        let result = self.apply_inner(req).await;
        let (result, keep) = match result {
            Ok(content) => {
                info!(%version, encoding = %encoding, wire_bytes, "config applied");
                (Ok(()), content.map(|c| (version, c)))
            }
            Err(e) => {
                warn!(%version, error = %e, "config apply failed");
                (Err(e), None)
            }
        };
        let outcome = Outcome {
            version,
            hash,
            result,
            elapsed: started.elapsed(),
            health: None,
        };
        (outcome, keep)
    }

    /// Records the applied version in the state file. The new file is live
    /// and its reload ran: that is the outcome, acknowledged already, even
    /// if this note cannot be written (a full disk) — saying "failed,
    /// previous file unchanged" would be false. Without the note an agent
    /// restarted before the next change reports the version before and is
    /// sent this one again, which it applies once more.
    async fn save_state(&self) {
        let paths = Arc::clone(&self.paths);
        let state = self.applied();
        let version = state.version;
        if let Err(e) = blocking(move || save_state(&paths, &state)).await {
            warn!(
                ?version,
                error = %e,
                "applied, but cannot record the applied version in the state file; after a restart before the next change the version is applied once more"
            );
        }
    }

    async fn keep_copy(&self, version: Version, content: Vec<u8>) {
        let paths = Arc::clone(&self.paths);
        let keep = self.cfg().keep.get() as usize;
        if let Err(e) = blocking(move || keep_version(&paths, version, &content, keep)).await {
            warn!(%version, error = %e, "cannot keep a copy of the applied version");
        }
    }

    /// Returns the written content (None when it was already in place).
    async fn apply_inner(&self, req: Request) -> Result<Option<Vec<u8>>, ApplyError> {
        let paths = Arc::clone(&self.paths);
        let cfg = self.cfg();
        let current = self.applied();
        let already = current.version == Some(req.version) && current.hash == req.hash;
        if already && self.disk_hash() == req.hash {
            return Ok(None);
        }
        let req2 = req.clone();
        let last = current.version;
        let settings = Arc::clone(&cfg);
        let (previous, content) =
            blocking(move || write_phase(&paths, &settings, &req2, last)).await?;
        if let Some(cmd) = cfg.reload_command.as_deref()
            && let Err(cause) = self.reload(cmd, cfg.reload_timeout, req.version).await
        {
            let paths = Arc::clone(&self.paths);
            let undo = if previous.is_some() {
                Undo::Restored
            } else {
                Undo::Removed
            };
            let restored = blocking(move || restore(&paths, previous.as_deref())).await;
            if let Err(r) = restored {
                warn!(error = %r, "cannot restore the previous config");
            }
            return Err(ApplyError::Reload { cause, undo });
        }
        // The state file is written after the acknowledgement
        // ([`Applier::save_state`]).
        let applied = Applied {
            version: Some(req.version),
            hash: req.hash.clone(),
        };
        if let Ok(mut a) = self.applied.lock() {
            *a = applied;
        }
        Ok(Some(content))
    }

    /// Runs the reload command (see [`crate::hook`]); only its stderr is
    /// kept for the report.
    async fn reload(
        &self,
        cmd: &str,
        after: Duration,
        version: Version,
    ) -> Result<(), ReloadError> {
        let hook = crate::hook::Hook {
            command: cmd,
            env: vec![
                ("CDN_CONFIG_PATH", self.paths.file.clone().into_os_string()),
                ("CDN_CONFIG_VERSION", version.to_string().into()),
            ],
            timeout: after,
            capture_stdout: false,
            marker: Some(&self.paths.reload_marker),
        };
        crate::hook::run(hook).await.map_err(|e| match e {
            HookError::Failed { code, output } => ReloadError::Failed {
                code,
                stderr: output,
            },
            HookError::Killed { signal, output } => ReloadError::Killed {
                signal,
                stderr: output,
            },
            HookError::Timeout { after } => ReloadError::Timeout { after },
            HookError::Spawn(e) => ReloadError::Spawn(e),
        })
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApplyError> + Send + 'static,
) -> Result<T, ApplyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApplyError::Io {
            path: String::new(),
            message: format!("apply task failed: {e}"),
        })?
}

/// Decoded content of `req`, size-limited.
fn decode(req: &Request) -> Result<Vec<u8>, ApplyError> {
    match req.encoding.as_str() {
        "" | "identity" => {
            if req.content.len() as u64 > MAX_CONFIG_BYTES {
                return Err(ApplyError::TooLarge(req.content.len() as u64));
            }
            Ok(req.content.to_vec())
        }
        "gzip" => bounded(flate2::read::GzDecoder::new(&req.content[..])),
        "zstd" => bounded(
            zstd::stream::read::Decoder::new(&req.content[..])
                .map_err(|e| ApplyError::Decode(e.to_string()))?,
        ),
        other => Err(ApplyError::Decode(format!("unknown encoding `{other}`"))),
    }
}

/// Reads a decoder to its end, refusing more than [`MAX_CONFIG_BYTES`].
fn bounded(decoder: impl Read) -> Result<Vec<u8>, ApplyError> {
    let mut out = Vec::new();
    decoder
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApplyError::Decode(e.to_string()))?;
    if out.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ApplyError::TooLarge(out.len() as u64));
    }
    Ok(out)
}

/// Checks and writes the new file; returns the previous content (None if
/// there was no file) for a restore, and the new content.
fn write_phase(
    paths: &Paths,
    cfg: &ManagedConfig,
    req: &Request,
    last_applied: Option<Version>,
) -> Result<(Option<Vec<u8>>, Vec<u8>), ApplyError> {
    let content = decode(req)?;
    // The YAML check runs beside the hash, the space check and the write of
    // the temporary file; the rename happens only if both succeed.
    std::thread::scope(|scope| {
        let parsing = cfg.check_yaml.then(|| scope.spawn(|| check_yaml(&content)));
        let written = stage(paths, cfg, req, &content, last_applied);
        let parsed = parsing.map_or(Ok(()), |p| {
            p.join().unwrap_or_else(|_| {
                Err(ApplyError::Parse {
                    line: None,
                    column: None,
                    message: "YAML check panicked".into(),
                })
            })
        });
        match (parsed, written) {
            (Ok(()), Ok((previous, tmp))) => {
                commit(&tmp, &paths.file)?;
                Ok((previous, content.clone()))
            }
            (Err(e), Ok((_, tmp))) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
            (Err(e), Err(_)) | (Ok(()), Err(e)) => Err(e),
        }
    })
}

fn check_yaml(content: &[u8]) -> Result<(), ApplyError> {
    let text = std::str::from_utf8(content).map_err(|e| ApplyError::Parse {
        line: None,
        column: None,
        message: format!("not UTF-8: {e}"),
    })?;
    cdn_common::config::check_yaml_syntax(text).map_err(|e| ApplyError::Parse {
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

/// Checks hash and free space, reads the previous content and writes the
/// new one to a synced temporary file; returns both.
fn stage(
    paths: &Paths,
    cfg: &ManagedConfig,
    req: &Request,
    content: &[u8],
    last_applied: Option<Version>,
) -> Result<(Option<Vec<u8>>, PathBuf), ApplyError> {
    let actual = sha256_hex(content);
    if actual != req.hash {
        return Err(ApplyError::HashMismatch {
            expected: req.hash.clone(),
            actual,
        });
    }
    std::fs::create_dir_all(&paths.dir).map_err(|e| io_error(&paths.dir, &e))?;
    let free = free_bytes(&paths.dir)?;
    let needed = cfg.min_free_bytes.saturating_add(content.len() as u64);
    if free < needed {
        return Err(ApplyError::NoSpace {
            dir: paths.dir.display().to_string(),
            free,
            needed,
            min_free: cfg.min_free_bytes,
        });
    }
    // What a failed reload puts back: the last applied version as kept
    // beside the file (the file itself may already hold a version whose
    // apply a crash interrupted), else the file as it is.
    let kept = last_applied.and_then(|v| std::fs::read(paths.versions.join(v.to_string())).ok());
    let previous = match kept {
        Some(k) => Some(k),
        None => match std::fs::read(&paths.file) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(&paths.file, &e)),
        },
    };
    let tmp = write_temp(&paths.file, content)?;
    keep_ownership(&paths.file, &tmp);
    Ok((previous, tmp))
}

/// Gives the new file the mode and owner of the one it replaces (a 0640
/// root:nginx file stays so). Best effort: without the right to chown, the
/// mode is still kept.
fn keep_ownership(target: &Path, tmp: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(target) {
        let _ = std::fs::set_permissions(tmp, meta.permissions());
        let _ = std::os::unix::fs::chown(tmp, Some(meta.uid()), Some(meta.gid()));
    }
}

/// Puts the previous content back (or removes the file if there was none).
fn restore(paths: &Paths, previous: Option<&[u8]>) -> Result<(), ApplyError> {
    match previous {
        Some(p) => {
            let tmp = write_temp(&paths.file, p)?;
            keep_ownership(&paths.file, &tmp);
            commit(&tmp, &paths.file)
        }
        None => {
            std::fs::remove_file(&paths.file).map_err(|e| io_error(&paths.file, &e))?;
            sync_dir(&paths.dir)
        }
    }
}

/// Keeps a copy of an applied version and prunes old copies.
fn keep_version(
    paths: &Paths,
    version: Version,
    content: &[u8],
    keep: usize,
) -> Result<(), ApplyError> {
    std::fs::create_dir_all(&paths.versions).map_err(|e| io_error(&paths.versions, &e))?;
    atomic_write(&paths.versions.join(version.to_string()), content)?;
    let mut kept: Vec<Version> = std::fs::read_dir(&paths.versions)
        .map_err(|e| io_error(&paths.versions, &e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    kept.sort_unstable();
    if kept.len() > keep {
        for v in &kept[..kept.len() - keep] {
            let _ = std::fs::remove_file(paths.versions.join(v.to_string()));
        }
    }
    Ok(())
}

/// Records the applied version and hash.
fn save_state(paths: &Paths, state: &Applied) -> Result<(), ApplyError> {
    let bytes = serde_json::to_vec(state).map_err(|e| ApplyError::Io {
        path: paths.state.display().to_string(),
        message: e.to_string(),
    })?;
    atomic_write(&paths.state, &bytes)
}

/// Writes `data` to `path` so that a crash at any moment leaves either the
/// old file or the new one: temp file in the same directory, fsync, rename,
/// fsync of the directory.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<(), ApplyError> {
    let tmp = write_temp(path, data)?;
    commit(&tmp, path)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `data` to a synced temporary file beside `path`.
fn write_temp(path: &Path, data: &[u8]) -> Result<PathBuf, ApplyError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, &e));
    }
    Ok(tmp)
}

/// Renames the synced `tmp` over `path` and syncs the directory.
fn commit(tmp: &Path, path: &Path) -> Result<(), ApplyError> {
    if let Err(e) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
        return Err(io_error(path, &e));
    }
    sync_dir(parent_dir(path))
}

fn sync_dir(dir: &Path) -> Result<(), ApplyError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, &e))
}

fn free_bytes(dir: &Path) -> Result<u64, ApplyError> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(|e| ApplyError::Io {
        path: dir.display().to_string(),
        message: format!("cannot read free space: {e}"),
    })?;
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

fn io_error(path: &Path, e: &std::io::Error) -> ApplyError {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        ApplyError::PermissionDenied(path.display().to_string())
    } else if e.kind() == std::io::ErrorKind::StorageFull {
        ApplyError::DiskFull(path.display().to_string())
    } else {
        ApplyError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> ManagedConfig {
        ManagedConfig {
            path: dir.join("edge.yml"),
            min_free_bytes: 0,
            ..Default::default()
        }
    }

    fn req(version: u64, text: &str) -> Request {
        Request {
            version: Version::new(version).unwrap(),
            hash: sha256_hex(text.as_bytes()),
            content: bytes::Bytes::copy_from_slice(text.as_bytes()),
            encoding: String::new(),
        }
    }

    async fn run(a: &Applier, r: Request) -> Outcome {
        let (tx, mut rx) = mpsc::channel(1);
        assert!(a.submit(r, tx).await);
        rx.recv().await.unwrap()
    }

    fn start(c: ManagedConfig) -> Applier {
        Applier::start(
            c,
            CancellationToken::new(),
            &tokio_util::task::TaskTracker::new(),
        )
    }

    #[tokio::test]
    async fn temporary_files_of_a_killed_agent_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        let paths = Paths::new(&c.path);
        std::fs::create_dir_all(&paths.versions).unwrap();
        // A pid no process has: the highest a 64-bit Linux allows, plus one.
        let dead = 4_194_305;
        let stale = [
            dir.path().join(format!(".edge.yml.tmp-{dead}")),
            dir.path().join(format!(".edge.yml.state.tmp-{dead}")),
            dir.path()
                .join(format!(".edge.yml.tmp-{}", std::process::id())),
            paths.versions.join(format!("7.tmp-{dead}")),
        ];
        // Another file's, and one of a process that runs (pid 1).
        let kept = [
            dir.path().join(format!(".other.yml.tmp-{dead}")),
            dir.path().join(".edge.yml.tmp-1"),
            dir.path().join("edge.yml"),
        ];
        for f in stale.iter().chain(&kept) {
            std::fs::write(f, b"x").unwrap();
        }
        let _a = start(c);
        for f in &stale {
            assert!(!f.exists(), "{} left", f.display());
        }
        for f in &kept {
            assert!(f.exists(), "{} removed", f.display());
        }
    }

    #[tokio::test]
    async fn applies_keeps_versions_and_remembers_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.keep = std::num::NonZeroU32::new(2).unwrap();
        let a = start(c.clone());
        for v in 1..=3 {
            let o = run(&a, req(v, &format!("v: {v}\n"))).await;
            o.result.unwrap();
        }
        // Copies are kept after the acknowledgement: one more (no-op)
        // request through the same worker waits for the last copy.
        run(&a, req(3, "v: 3\n")).await.result.unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("edge.yml")).unwrap(),
            "v: 3\n"
        );
        let kept: Vec<_> = std::fs::read_dir(dir.path().join(".edge.yml.versions"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(kept.len(), 2);
        let again = start(c);
        assert_eq!(again.applied().version, Version::new(3));
        assert_eq!(again.disk_hash(), sha256_hex(b"v: 3\n"));
    }

    #[tokio::test]
    async fn the_state_file_keeps_its_format() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".edge.yml.state");
        // As older agents wrote it: the version a number, 0 for none.
        std::fs::write(&state, r#"{"version":0,"hash":""}"#).unwrap();
        assert_eq!(start(cfg(dir.path())).applied().version, None);
        std::fs::write(&state, r#"{"version":4,"hash":"abc"}"#).unwrap();
        let a = start(cfg(dir.path()));
        assert_eq!(a.applied().version, Version::new(4));
        run(&a, req(5, "v: 5\n")).await.result.unwrap();
        // The state is written after the acknowledgement: one more (no-op)
        // request through the same worker waits for it.
        run(&a, req(5, "v: 5\n")).await.result.unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        assert_eq!(written["version"], 5);
        assert_eq!(written["hash"], sha256_hex(b"v: 5\n"));
    }

    #[tokio::test]
    async fn the_replaced_file_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("edge.yml");
        std::fs::write(&file, "old: 1\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let a = start(cfg(dir.path()));
        run(&a, req(1, "new: 1\n")).await.result.unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[tokio::test]
    async fn by_default_the_content_is_trusted_as_the_master_checked_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = start(cfg(dir.path()));
        run(&a, req(1, "a: 1\nb: [x\n")).await.result.unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("edge.yml")).unwrap(),
            "a: 1\nb: [x\n"
        );
    }

    #[tokio::test]
    async fn with_check_yaml_bad_yaml_names_line_and_column_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = start(ManagedConfig {
            check_yaml: true,
            ..cfg(dir.path())
        });
        run(&a, req(1, "ok: 1\n")).await.result.unwrap();
        let e = run(&a, req(2, "a: 1\nb: [x\n"))
            .await
            .result
            .unwrap_err()
            .to_string();
        assert!(e.contains("line") && e.contains("column"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("edge.yml")).unwrap(),
            "ok: 1\n"
        );
    }

    #[tokio::test]
    async fn failed_reload_restores_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.reload_command = Some("echo broken config >&2; exit 3".into());
        let a = start(cfg(dir.path()));
        run(&a, req(1, "ok: 1\n")).await.result.unwrap();
        // The state is written after the acknowledgement: one more (no-op)
        // request through the same worker waits for it.
        run(&a, req(1, "ok: 1\n")).await.result.unwrap();
        let b = start(c);
        let e = run(&b, req(2, "ok: 2\n"))
            .await
            .result
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exit code 3")
                && e.contains("previous config restored")
                && e.contains("broken config"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("edge.yml")).unwrap(),
            "ok: 1\n"
        );
        assert_eq!(b.applied().version, Version::new(1));
    }

    #[tokio::test]
    async fn a_state_file_that_cannot_be_written_does_not_turn_a_live_apply_into_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        let ran = dir.path().join("reloaded");
        c.reload_command = Some(format!("touch {}", ran.display()));
        // The state file's temporary name is taken by a directory: its
        // write fails after the config file is live and reloaded.
        let blocker = dir
            .path()
            .join(format!("..edge.yml.state.tmp-{}", std::process::id()));
        std::fs::create_dir(&blocker).unwrap();
        let a = start(c);
        let o = run(&a, req(1, "ok: 1\n")).await;
        assert!(o.result.is_ok(), "{:?}", o.result);
        assert!(ran.exists(), "reload ran");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("edge.yml")).unwrap(),
            "ok: 1\n"
        );
        assert_eq!(a.applied().version, Version::new(1));
    }

    #[tokio::test]
    async fn a_first_config_whose_reload_fails_is_removed_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.reload_command = Some("exit 4".into());
        let a = start(c);
        let e = run(&a, req(1, "ok: 1\n"))
            .await
            .result
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "reload command failed with exit code 4; the new file removed (there was no previous config)"
        );
        assert!(!dir.path().join("edge.yml").exists());
    }

    #[tokio::test]
    async fn a_version_that_just_failed_is_not_reloaded_twice() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let mut c = cfg(dir.path());
        c.reload_command = Some(format!("echo x >> '{}'; exit 3", runs.display()));
        let a = start(c);
        let first = run(&a, req(1, "ok: 1\n")).await.result.unwrap_err();
        let second = run(&a, req(1, "ok: 1\n")).await.result.unwrap_err();
        assert_eq!(first.to_string(), second.to_string());
        assert_eq!(std::fs::read_to_string(&runs).unwrap(), "x\n");
        // Other content under the same number is a new attempt.
        run(&a, req(1, "ok: 2\n")).await.result.unwrap_err();
        assert_eq!(std::fs::read_to_string(&runs).unwrap(), "x\nx\n");
    }

    #[tokio::test]
    async fn not_enough_free_space_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.min_free_bytes = u64::MAX / 2;
        let a = start(c);
        let e = run(&a, req(1, "ok: 1\n"))
            .await
            .result
            .unwrap_err()
            .to_string();
        assert!(e.contains("not enough disk space"), "{e}");
        assert!(!dir.path().join("edge.yml").exists());
    }

    #[tokio::test]
    async fn gzip_content_and_hash_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let a = start(cfg(dir.path()));
        let text: String = (0..500).map(|i| format!("k{i}: v\n")).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        let mut r = req(1, &text);
        r.content = enc.finish().unwrap().into();
        r.encoding = "gzip".into();
        run(&a, r.clone()).await.result.unwrap();
        r.version = Version::new(2).unwrap();
        r.hash = "0".repeat(64);
        let e = run(&a, r).await.result.unwrap_err().to_string();
        assert!(e.contains("does not match its hash"), "{e}");
    }

    #[tokio::test]
    async fn the_outcome_of_a_successful_apply_carries_the_health_after_the_reload() {
        use crate::health::Verdict;
        let dir = tempfile::tempdir().unwrap();
        let mut agent = crate::config::AgentConfig {
            config: cfg(dir.path()),
            ..Default::default()
        };
        agent.config.reload_command =
            Some("grep -q fails \"$CDN_CONFIG_PATH\" && exit 5; true".into());
        agent.config.health_command =
            Some("grep -q healthy \"$CDN_CONFIG_PATH\" || { echo sick >&2; exit 2; }".into());
        agent.config.health_interval = Duration::from_secs(3600);
        let (_tx, live) = tokio::sync::watch::channel(Arc::new(agent));
        let a = Applier::start_with_health(
            live,
            CancellationToken::new(),
            &tokio_util::task::TaskTracker::new(),
        );
        let ok = run(&a, req(1, "healthy: yes\n")).await;
        let h = ok.health.expect("health with the ack");
        assert_eq!((h.verdict, h.version), (Verdict::Ok, Version::new(1)));
        let sick = run(&a, req(2, "status: broken\n")).await;
        sick.result.unwrap();
        let h = sick.health.expect("health with the ack");
        assert_eq!(h.verdict, Verdict::Failing("exit 2: sick".into()));
        assert_eq!(h.version, Version::new(2));
        // A failed apply carries none: the node did not change.
        let failed = run(&a, req(3, "fails: yes\n")).await;
        assert!(failed.result.is_err() && failed.health.is_none());
        assert_eq!(
            a.health().borrow().verdict,
            Verdict::Failing("exit 2: sick".into())
        );
    }
}
