//! Backups of the whole store: the file format, writing a file atomically,
//! keeping the newest few, and the schedule the leading master runs.
//!
//! A backup is one gzip stream of JSON lines: a header (format and its
//! version, when, from which backend and master, entries per table), one
//! line per record (`{"t":table,"k":key,"v":base64 of the value}`), since
//! format version 2 the exec recordings of the master that made it (lines
//! `{"r":name,"o":offset,"v":base64}`, see [`recordings`]), and a trailer
//! with the sha256 of every byte before it, the number of entries and the
//! recordings' count and bytes. A reader checks all of it, so a truncated
//! or damaged file is refused before anything is restored; version 1 files
//! (no recordings) still read. A backup is written as it is read, never
//! whole in memory: `Backup` on the admin API streams the same bytes as a
//! file on disk holds. Backups carry the CA's private key: files are
//! written 0600, directories made 0700.

pub mod recordings;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{BackendKind, BackupConfig};
use crate::metrics::Metrics;
use crate::store::{Entry, Store, StoreError, Table};

/// The header's `format`: what says a file is a masterd backup.
pub const FORMAT: &str = "cdn-masterd-backup";
/// The newest format version this masterd writes and reads (2 added the
/// exec recordings; 1 still reads).
pub const FORMAT_VERSION: u64 = 2;
/// Scheduled backups are `masterd-backup-<UTC time>.cdnbak`.
pub const SCHEDULED_PREFIX: &str = "masterd-backup-";
/// The extension of backup files.
pub const EXTENSION: &str = ".cdnbak";
/// Where scheduled backups go when `backup.dir` is unset, in `data_dir`.
pub const DEFAULT_DIR: &str = "backups";
/// Largest piece of a backup in one `BackupChunk` message.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// Where a backup comes from, as its header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The id of the master that made it.
    pub master: String,
    pub backend: BackendKind,
}

fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

impl Origin {
    /// This serving process: host name and pid, the masters' default id.
    pub fn this_master(backend: BackendKind) -> Self {
        Self {
            master: format!("{}-{}", host_name(), std::process::id()),
            backend,
        }
    }

    /// `masterd backup --offline` on this host: no master was involved.
    pub fn offline(backend: BackendKind) -> Self {
        Self {
            master: format!("masterd backup --offline on {}", host_name()),
            backend,
        }
    }
}

/// The first line of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub format_version: u64,
    /// When the store was read (unix ms).
    pub created_ms: i64,
    /// `embedded` or `etcd`.
    pub source_backend: String,
    /// The master that made it.
    pub master: String,
    /// Entries per table (every table, 0 included).
    pub counts: BTreeMap<String, u64>,
}

impl Header {
    /// Entries in all tables.
    pub fn entries(&self) -> u64 {
        self.counts.values().sum()
    }

    /// One line per table, in [`Table::ALL`] order: `  nodes  12`.
    pub fn table_lines(&self) -> Vec<String> {
        Table::ALL
            .iter()
            .map(|t| {
                let n = self.counts.get(t.as_str()).copied().unwrap_or(0);
                format!("  {:<16} {n}", t.as_str())
            })
            .collect()
    }
}

/// The last line of a backup.
#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    /// Lowercase hex sha256 of every uncompressed byte before this line.
    sha256: String,
    entries: u64,
    /// Recordings and their bytes (format 2; absent in format 1).
    #[serde(default)]
    recordings: u64,
    #[serde(default)]
    recording_bytes: u64,
}

/// One record's line.
#[derive(Serialize)]
struct EntryLine<'a> {
    t: &'a str,
    k: &'a str,
    v: String,
}

/// A piece of a recording's line.
#[derive(Serialize)]
struct RecordingLine<'a> {
    r: &'a str,
    o: u64,
    v: String,
}

/// Any line after the header, read before knowing which it is.
#[derive(Deserialize)]
struct BodyLine {
    t: Option<String>,
    k: Option<String>,
    v: Option<String>,
    r: Option<String>,
    o: Option<u64>,
    sha256: Option<String>,
    entries: Option<u64>,
    #[serde(default)]
    recordings: u64,
    #[serde(default)]
    recording_bytes: u64,
}

/// A backup read back and checked.
#[derive(Debug)]
pub struct Backup {
    pub header: Header,
    pub entries: Vec<Entry>,
    /// The exec recordings it carries.
    pub recordings: recordings::Counted,
}

/// What a backup holds besides its header's tables.
pub type Recorded = recordings::Counted;

/// A backup written to disk.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub header: Header,
    pub recordings: Recorded,
    /// Size of the file.
    pub bytes: u64,
}

/// Why a backup could not be made, written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{file} is not a usable backup: {message}")]
    Invalid { file: String, message: String },
    #[error(
        "{file} is backup format version {found}, newer than this masterd reads ({FORMAT_VERSION}): use the masterd version that wrote it, or a newer one"
    )]
    NewerFormat { file: String, found: u64 },
    #[error("{file} already exists; pass --force to replace it")]
    Exists { file: String },
    #[error("{file}: {message}")]
    Io { file: String, message: String },
    #[error("cannot read the store: {0}")]
    Store(#[from] StoreError),
    #[error("backup task failed: {0}")]
    Task(String),
}

impl From<BackupError> for crate::error::MasterError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Store(s) => Self::Store(s),
            other => Self::Internal(other.to_string()),
        }
    }
}

fn io_error(file: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Io {
        file: file.display().to_string(),
        message: cdn_common::describe_io(&e),
    }
}

/// Writes lines into a gzip stream, hashing what goes in.
struct LineWriter<W: Write> {
    out: GzEncoder<W>,
    hash: Sha256,
}

impl<W: Write> LineWriter<W> {
    fn line(&mut self, value: &impl Serialize) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        self.hash.update(&line);
        self.out.write_all(&line)
    }
}

/// The header of a backup of `entries` made by `origin` at `created_ms`.
fn header_of(entries: &[Entry], origin: &Origin, created_ms: i64) -> Header {
    let mut counts: BTreeMap<String, u64> = Table::ALL
        .iter()
        .map(|t| (t.as_str().to_string(), 0))
        .collect();
    for e in entries {
        *counts.entry(e.table.as_str().to_string()).or_default() += 1;
    }
    Header {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_ms,
        source_backend: origin.backend.as_str().into(),
        master: origin.master.clone(),
        counts,
    }
}

/// Writes a backup of `entries` and the recordings `recs` (read now, up
/// to the size each had when listed) into `out`; returns `out`, the
/// header and the recordings written.
pub fn encode<W: Write>(
    out: W,
    entries: &[Entry],
    recs: &[recordings::Source],
    origin: &Origin,
    created_ms: i64,
) -> std::io::Result<(W, Header, Recorded)> {
    let header = header_of(entries, origin, created_ms);
    let mut w = LineWriter {
        out: GzEncoder::new(out, Compression::default()),
        hash: Sha256::new(),
    };
    w.line(&header)?;
    for e in entries {
        w.line(&EntryLine {
            t: e.table.as_str(),
            k: &e.key,
            v: BASE64.encode(&e.value),
        })?;
    }
    let mut recorded = Recorded::default();
    for source in recs {
        let copied = recordings::copy(source, |o, data| {
            w.line(&RecordingLine {
                r: &source.name,
                o,
                v: BASE64.encode(data),
            })
        })
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("recording {}: {e}", source.path.display()),
            )
        })?;
        if let Some(bytes) = copied {
            recorded.files += 1;
            recorded.bytes += bytes;
        }
    }
    let trailer = Trailer {
        sha256: format!("{:x}", w.hash.clone().finalize()),
        entries: entries.len() as u64,
        recordings: recorded.files,
        recording_bytes: recorded.bytes,
    };
    w.line(&trailer)?;
    Ok((w.out.finish()?, header, recorded))
}

/// Reads and checks a backup from `input`; `file` names it in errors.
/// Recordings are checked and counted, not kept: [`decode_with`] hands
/// them to a restore.
pub fn decode(input: impl Read, file: &str) -> Result<Backup, BackupError> {
    decode_with(input, file, &mut |_, _, _| Ok(()))
}

/// Takes each piece of a recording read from a backup: its name, offset
/// and bytes.
pub type RecordingSink<'a> = dyn FnMut(&str, u64, &[u8]) -> std::io::Result<()> + 'a;

/// Reads and checks a backup from `input`, handing each piece of a
/// recording (name, offset, bytes) to `recording` as it is read. A backup
/// found bad later has already handed some: the caller keeps them aside
/// until this returns Ok.
pub fn decode_with(
    input: impl Read,
    file: &str,
    recording: &mut RecordingSink<'_>,
) -> Result<Backup, BackupError> {
    let invalid = |message: String| BackupError::Invalid {
        file: file.to_string(),
        message,
    };
    // gzip's magic number first: a file of another kind is named as such,
    // not as a truncated backup.
    let mut input = BufReader::new(input);
    match input.fill_buf() {
        Ok([]) => return Err(invalid("it is empty".into())),
        Ok([0x1f]) | Ok([0x1f, 0x8b, ..]) => {}
        Ok(_) => {
            return Err(invalid(
                "it is not gzip-compressed: not a masterd backup".into(),
            ));
        }
        Err(e) => {
            return Err(BackupError::Io {
                file: file.to_string(),
                message: cdn_common::describe_io(&e),
            });
        }
    }
    let mut reader = BufReader::new(GzDecoder::new(input));
    let mut hash = Sha256::new();
    let mut line = Vec::new();
    let mut number = 0usize;
    // Reads the next whole line into `line`; false at the end.
    let mut next = |line: &mut Vec<u8>, number: &mut usize| -> Result<bool, BackupError> {
        line.clear();
        match reader.read_until(b'\n', line) {
            Ok(0) => Ok(false),
            Ok(_) if line.last() == Some(&b'\n') => {
                *number += 1;
                Ok(true)
            }
            Ok(_) => Err(invalid(format!(
                "it ends in the middle of line {} (truncated)",
                *number + 1
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(invalid(
                "its compressed data ends early (truncated)".to_string(),
            )),
            Err(e) => Err(invalid(format!(
                "cannot decompress it ({e}): damaged, or not a masterd backup"
            ))),
        }
    };

    if !next(&mut line, &mut number)? {
        return Err(invalid("it is empty".into()));
    }
    hash.update(&line);
    let header = read_header(&line, file)?;

    let mut entries = Vec::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut recorded = Recorded::default();
    // The recording being read and its next offset; names already read.
    let mut current: Option<(String, u64)> = None;
    let mut seen = std::collections::HashSet::new();
    let trailer = loop {
        if !next(&mut line, &mut number)? {
            return Err(invalid(format!(
                "it ends after {} entries without its trailer (truncated)",
                entries.len()
            )));
        }
        let body: BodyLine = serde_json::from_slice(&line)
            .map_err(|e| invalid(format!("line {number} is not a backup line: {e}")))?;
        if let Some(sha256) = body.sha256 {
            break Trailer {
                sha256,
                entries: body.entries.unwrap_or(u64::MAX),
                recordings: body.recordings,
                recording_bytes: body.recording_bytes,
            };
        }
        hash.update(&line);
        if let Some(name) = body.r {
            let (Some(o), Some(v)) = (body.o, body.v) else {
                return Err(invalid(format!(
                    "line {number}: a recording's line without its offset or data"
                )));
            };
            if !recordings::valid_name(&name) {
                return Err(invalid(format!(
                    "line {number} names a recording {name:?}, which is not `<exec id>/<node>.rec`"
                )));
            }
            let data = BASE64
                .decode(v.as_bytes())
                .map_err(|e| invalid(format!("line {number}: the data is not base64 ({e})")))?;
            let in_order = match &current {
                Some((n, next)) if *n == name => *next == o,
                _ => o == 0 && seen.insert(name.clone()),
            };
            if !in_order {
                return Err(invalid(format!(
                    "line {number}: recording {name} at offset {o} is out of order"
                )));
            }
            if o == 0 {
                recorded.files += 1;
            }
            recorded.bytes += data.len() as u64;
            recording(&name, o, &data).map_err(|e| BackupError::Io {
                file: format!("recording {name}"),
                message: cdn_common::describe_io(&e),
            })?;
            current = Some((name, o + data.len() as u64));
            continue;
        }
        let (Some(t), Some(k), Some(v)) = (body.t, body.k, body.v) else {
            return Err(invalid(format!(
                "line {number} is neither an entry nor the trailer"
            )));
        };
        let table = Table::parse(&t)
            .ok_or_else(|| invalid(format!("line {number} names an unknown table {t:?}")))?;
        let value = BASE64
            .decode(v.as_bytes())
            .map_err(|e| invalid(format!("line {number}: the value is not base64 ({e})")))?;
        *counts.entry(t).or_default() += 1;
        entries.push(Entry {
            table,
            key: k,
            value: value.into(),
        });
    };
    let computed = format!("{:x}", hash.finalize());
    if trailer.sha256 != computed {
        return Err(invalid(format!(
            "checksum mismatch (trailer says sha256 {}, the content has {computed}): damaged",
            trailer.sha256
        )));
    }
    if trailer.entries != entries.len() as u64 {
        return Err(invalid(format!(
            "the trailer counts {} entries, the file holds {}",
            trailer.entries,
            entries.len()
        )));
    }
    if (trailer.recordings, trailer.recording_bytes) != (recorded.files, recorded.bytes) {
        return Err(invalid(format!(
            "the trailer counts {} recordings of {} bytes, the file holds {} of {}",
            trailer.recordings, trailer.recording_bytes, recorded.files, recorded.bytes
        )));
    }
    for t in header.counts.keys().chain(counts.keys()) {
        let (said, found) = (
            header.counts.get(t).copied().unwrap_or(0),
            counts.get(t).copied().unwrap_or(0),
        );
        if said != found {
            return Err(invalid(format!(
                "the header counts {said} {t} entries, the file holds {found}"
            )));
        }
    }
    // Reading to the end also makes gzip check its own CRC.
    if next(&mut line, &mut number)? {
        return Err(invalid(format!("line {number} follows the trailer")));
    }
    Ok(Backup {
        header,
        entries,
        recordings: recorded,
    })
}

/// The header line, checked: a masterd backup of a version this reads.
fn read_header(line: &[u8], file: &str) -> Result<Header, BackupError> {
    let invalid = |message: String| BackupError::Invalid {
        file: file.to_string(),
        message,
    };
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|_| {
        invalid("its first line is not a backup header (damaged, or not a masterd backup)".into())
    })?;
    match value.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        Some(other) => return Err(invalid(format!("its format is {other:?}, not {FORMAT:?}"))),
        None => {
            return Err(invalid(
                "its first line is not a backup header (damaged, or not a masterd backup)".into(),
            ));
        }
    }
    match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v > FORMAT_VERSION => {
            return Err(BackupError::NewerFormat {
                file: file.to_string(),
                found: v,
            });
        }
        Some(v) if v >= 1 => {}
        _ => return Err(invalid("its header has no valid format_version".into())),
    }
    serde_json::from_value(value).map_err(|e| invalid(format!("its header is malformed: {e}")))
}

/// Reads and checks the backup in `path`.
pub fn read_file(path: &Path) -> Result<Backup, BackupError> {
    let f = std::fs::File::open(path).map_err(io_error(path))?;
    decode(f, &path.display().to_string())
}

/// Where [`write_atomically`] puts a backup.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A new file in this directory (made 0700 if missing), named for the
    /// time: `masterd-backup-20261130T081500Z.cdnbak`.
    Scheduled(&'a Path),
    /// This file; an existing one is replaced only when `replace`.
    File { path: &'a Path, replace: bool },
}

/// Writes a backup of `entries` and the recordings `recs` to `target`
/// atomically: a temporary file in the same directory, fsync'd, renamed
/// into place, the directory fsync'd. A crash leaves the old file or the
/// new one, never half of one.
pub fn write_atomically(
    target: Target<'_>,
    entries: &[Entry],
    recs: &[recordings::Source],
    origin: &Origin,
    created_ms: i64,
) -> Result<Written, BackupError> {
    let (path, replace) = match target {
        Target::Scheduled(dir) => {
            cdn_common::tls::create_private_dir(dir).map_err(io_error(dir))?;
            (scheduled_path(dir, created_ms), false)
        }
        Target::File { path, replace } => (path.to_path_buf(), replace),
    };
    let ((header, recordings), bytes) = atomically(&path, replace, |f| {
        let mut out = std::io::BufWriter::new(f);
        let (_, header, recorded) = encode(&mut out, entries, recs, origin, created_ms)?;
        out.flush()?;
        Ok((header, recorded))
    })?;
    Ok(Written {
        path,
        header,
        recordings,
        bytes,
    })
}

/// Writes the pieces of a backup fetched from a master, as they arrive on
/// `pieces`, to `path` atomically (as [`write_atomically`] does), then
/// reads it back and checks it: a copy damaged on the way is refused now,
/// not at restore time, and leaves no file. Blocking.
pub fn receive_atomically(
    path: &Path,
    replace: bool,
    pieces: impl IntoIterator<Item = Bytes>,
) -> Result<(Backup, u64), BackupError> {
    use std::io::Seek;
    // The check's own error, kept aside: the file helper sees only that
    // filling failed (and removes the temporary file).
    let mut checked: Option<Result<Backup, BackupError>> = None;
    let written = atomically(path, replace, |f| {
        {
            let mut out = std::io::BufWriter::new(&mut *f);
            for piece in pieces {
                out.write_all(&piece)?;
            }
            out.flush()?;
        }
        f.rewind()?;
        let result = decode(BufReader::new(&mut *f), "the backup the master sent");
        let ok = result.is_ok();
        checked = Some(result);
        if ok {
            Ok(())
        } else {
            Err(std::io::Error::other("refused by the check"))
        }
    });
    match (written, checked) {
        (_, Some(Err(e))) => Err(e),
        (Err(e), _) => Err(e),
        (Ok((_, bytes)), Some(Ok(b))) => Ok((b, bytes)),
        (Ok(_), None) => Err(BackupError::Task("the backup was not checked".into())),
    }
}

/// Runs `fill` on a new 0600 temporary file beside `path`, then puts it in
/// place; returns what `fill` returned and the file's size.
fn atomically<T>(
    path: &Path,
    replace: bool,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<T>,
) -> Result<(T, u64), BackupError> {
    let exists = || BackupError::Exists {
        file: path.display().to_string(),
    };
    if !replace && path.symlink_metadata().is_ok() {
        return Err(exists());
    }
    cdn_common::tls::write_private_with(path, replace, fill).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            exists()
        } else {
            io_error(path)(e)
        }
    })
}

/// `20261130T081500Z` for `ms` (UTC).
fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A free name for a scheduled backup made at `created_ms` in `dir`: two
/// in one second get `-2`, `-3`… after the time.
fn scheduled_path(dir: &Path, created_ms: i64) -> PathBuf {
    let stamp = timestamp(created_ms);
    let mut seq = 1u32;
    loop {
        let name = if seq == 1 {
            format!("{SCHEDULED_PREFIX}{stamp}{EXTENSION}")
        } else {
            format!("{SCHEDULED_PREFIX}{stamp}-{seq}{EXTENSION}")
        };
        let path = dir.join(name);
        if path.symlink_metadata().is_err() {
            return path;
        }
        seq += 1;
    }
}

/// The time and sequence number of a scheduled backup's file name; None
/// for any other name.
fn scheduled_order(name: &str) -> Option<(String, u32)> {
    let stem = name
        .strip_prefix(SCHEDULED_PREFIX)?
        .strip_suffix(EXTENSION)?;
    let (stamp, seq) = match stem.split_once('-') {
        Some((stamp, seq)) => (stamp, seq.parse::<u32>().ok().filter(|n| *n >= 2)?),
        None => (stem, 1),
    };
    let b = stamp.as_bytes();
    let well_formed = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    well_formed.then(|| (stamp.to_string(), seq))
}

/// Scheduled backups in `dir`, newest first; other files are not looked at.
pub fn scheduled_backups(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(order) = scheduled_order(&name) else {
            continue;
        };
        if entry.file_type().map_err(io_error(dir))?.is_file() {
            found.push((order, entry.path()));
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Deletes all but the newest `keep` scheduled backups in `dir`; returns
/// the deleted files. Files not named like scheduled backups stay.
pub fn rotate(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let old: Vec<PathBuf> = scheduled_backups(dir)?.into_iter().skip(keep).collect();
    for p in &old {
        std::fs::remove_file(p).map_err(io_error(p))?;
    }
    Ok(old)
}

/// What a command that wrote or restored `header`'s backup at `path` (of
/// `bytes`, with `recorded`) prints: a summary line, then entries per
/// table, then the recordings.
pub fn report(verb: &str, path: &Path, header: &Header, recorded: Recorded, bytes: u64) -> String {
    let mut lines = vec![format!(
        "{verb} {}: {} entries, {bytes} bytes; {} store, backed up at {} by {}",
        path.display(),
        header.entries(),
        header.source_backend,
        crate::error::fmt_ms(header.created_ms),
        header.master,
    )];
    lines.extend(header.table_lines());
    lines.push(format!(
        "  {:<16} {} ({} bytes)",
        "recordings", recorded.files, recorded.bytes
    ));
    lines.join("\n")
}

/// A `Write` that hands what is written to `send` in pieces of
/// [`MAX_CHUNK_BYTES`]; `send` failing (the reader went away) fails the
/// write.
struct Pieces<F: FnMut(Bytes) -> std::io::Result<()>> {
    send: F,
    buf: Vec<u8>,
    total: u64,
}

impl<F: FnMut(Bytes) -> std::io::Result<()>> Pieces<F> {
    fn ship(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(MAX_CHUNK_BYTES));
            self.total += piece.len() as u64;
            (self.send)(Bytes::from(piece))?;
        }
        Ok(())
    }
}

impl<F: FnMut(Bytes) -> std::io::Result<()>> Write for Pieces<F> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(MAX_CHUNK_BYTES - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= MAX_CHUNK_BYTES {
            self.ship()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A consistent copy of the store and this master's recordings in
/// `recordings_dir`, encoded on the blocking pool and handed to `send` in
/// pieces of at most [`MAX_CHUNK_BYTES`] as it is made (never whole in
/// memory). Returns the header, the recordings and the bytes sent.
pub async fn stream_store(
    store: &Store,
    recordings_dir: PathBuf,
    origin: &Origin,
    send: impl FnMut(Bytes) -> std::io::Result<()> + Send + 'static,
) -> Result<(Header, Recorded, u64), BackupError> {
    let entries = store.export().await?;
    let created_ms = cdn_common::unix_millis_now();
    let origin = origin.clone();
    tokio::task::spawn_blocking(move || {
        let recs = recordings::list(&recordings_dir).map_err(io_error(&recordings_dir))?;
        let out = Pieces {
            send,
            buf: Vec::with_capacity(MAX_CHUNK_BYTES),
            total: 0,
        };
        let encoded = encode(out, &entries, &recs, &origin, created_ms).and_then(
            |(mut out, header, recorded)| {
                out.ship()?;
                Ok((header, recorded, out.total))
            },
        );
        encoded.map_err(|e| BackupError::Task(format!("cannot write the backup: {e}")))
    })
    .await
    .map_err(|e| BackupError::Task(e.to_string()))?
}

/// Where scheduled backups go: `backup.dir`, or `<data_dir>/backups`.
pub fn dir_of(config: &BackupConfig, data_dir: &Path) -> PathBuf {
    config
        .dir
        .clone()
        .unwrap_or_else(|| data_dir.join(DEFAULT_DIR))
}

/// Told of each scheduled backup written: its file and when the store was
/// read (unix ms). The leader records it for `cdnctl masters`.
pub type OnWritten = Box<dyn Fn(&Path, i64) + Send + Sync>;

/// One scheduled backup into `dir`, then rotation to `keep` files.
async fn scheduled_once(
    store: &Store,
    dir: &Path,
    recordings_dir: &Path,
    keep: usize,
    origin: &Origin,
) -> Result<(Written, Vec<PathBuf>), BackupError> {
    let entries = store.export().await?;
    let created_ms = cdn_common::unix_millis_now();
    let (dir, origin) = (dir.to_path_buf(), origin.clone());
    let recordings_dir = recordings_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let recs = recordings::list(&recordings_dir).map_err(io_error(&recordings_dir))?;
        let written = write_atomically(
            Target::Scheduled(&dir),
            &entries,
            &recs,
            &origin,
            created_ms,
        )?;
        let deleted = rotate(&dir, keep)?;
        Ok((written, deleted))
    })
    .await
    .map_err(|e| BackupError::Task(e.to_string()))?
}

/// Writes a backup of `store` every `config.interval` (nothing when it is
/// 0) into [`dir_of`], keeps the newest `config.keep`, counts each in
/// `metrics` and tells `on_written`; ends on `shutdown` (a backup under way
/// is finished first). Run it while this master leads; stopping it marks
/// the master as not scheduling (`cdn_backup_interval_seconds` 0).
pub async fn schedule(
    store: Store,
    config: BackupConfig,
    data_dir: PathBuf,
    origin: Origin,
    metrics: Arc<Metrics>,
    on_written: OnWritten,
    shutdown: CancellationToken,
) {
    if config.interval.is_zero() {
        return;
    }
    let dir = dir_of(&config, &data_dir);
    let recordings_dir = crate::recording::dir_in(&data_dir);
    let keep = config.keep.max(1) as usize;
    // Until this master writes one, the newest on disk is the last success
    // (a restarted master is not "never backed up").
    let newest = scheduled_backups(&dir)
        .ok()
        .and_then(|files| files.into_iter().next())
        .and_then(|p| std::fs::metadata(p).ok()?.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    if let Some(t) = newest {
        metrics.backup_last_success.set(t.as_secs() as i64);
    }
    metrics
        .backup_interval
        .set(config.interval.as_secs() as i64);
    info!(
        dir = %dir.display(),
        interval = %cdn_common::duration::short(config.interval),
        keep,
        "scheduled backups on"
    );
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + config.interval,
        config.interval,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        match scheduled_once(&store, &dir, &recordings_dir, keep, &origin).await {
            Ok((w, deleted)) => {
                metrics.backup_succeeded(w.header.created_ms);
                on_written(&w.path, w.header.created_ms);
                info!(
                    file = %w.path.display(),
                    entries = w.header.entries(),
                    recordings = w.recordings.files,
                    bytes = w.bytes,
                    deleted = deleted.len(),
                    "backup written"
                );
            }
            Err(e) => {
                metrics.backup_failed();
                warn!(dir = %dir.display(), error = %e, "scheduled backup failed");
            }
        }
    }
    metrics.backup_interval.set(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Backend, EmbeddedStore, NodeRecord, number_key};

    fn entries() -> Vec<Entry> {
        vec![
            Entry {
                table: Table::Nodes,
                key: "agent-1".into(),
                value: Bytes::from_static(br#"{"name":"agent-1"}"#),
            },
            Entry {
                table: Table::Content,
                key: number_key(1),
                value: Bytes::from_static(b"\x00binary\xffcontent\n"),
            },
            Entry {
                table: Table::Meta,
                key: "fleet_desired_version".into(),
                value: Bytes::from_static(b"1"),
            },
        ]
    }

    fn origin() -> Origin {
        Origin {
            master: "m1".into(),
            backend: BackendKind::Embedded,
        }
    }

    fn encoded() -> Vec<u8> {
        encode(Vec::new(), &entries(), &[], &origin(), 1_764_490_500_000)
            .unwrap()
            .0
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut s = String::new();
        GzDecoder::new(bytes).read_to_string(&mut s).unwrap();
        s
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(text.as_bytes()).unwrap();
        g.finish().unwrap()
    }

    fn refusal(bytes: &[u8]) -> String {
        decode(bytes, "b.cdnbak").unwrap_err().to_string()
    }

    #[test]
    fn a_backup_reads_back_as_written() {
        let bytes = encoded();
        let text = gunzip(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with(r#"{"format":"cdn-masterd-backup","format_version":2,"#));
        assert!(lines[1].starts_with(r#"{"t":"nodes","k":"agent-1","v":""#));
        let digest = format!(
            "{:x}",
            Sha256::digest(&text.as_bytes()[..text.len() - lines[4].len() - 1])
        );
        assert_eq!(
            lines[4],
            format!(r#"{{"sha256":"{digest}","entries":3,"recordings":0,"recording_bytes":0}}"#)
        );

        let b = decode(&bytes[..], "b.cdnbak").unwrap();
        assert_eq!(b.entries, entries());
        assert_eq!(b.header.master, "m1");
        assert_eq!(b.header.source_backend, "embedded");
        assert_eq!(b.header.created_ms, 1_764_490_500_000);
        assert_eq!(b.header.counts["nodes"], 1);
        assert_eq!(b.header.counts["audit"], 0);
        assert_eq!(b.header.entries(), 3);
    }

    #[test]
    fn truncated_damaged_and_foreign_files_are_refused_by_name() {
        let bytes = encoded();
        let cut = refusal(&bytes[..bytes.len() - 10]);
        assert!(cut.starts_with("b.cdnbak is not a usable backup"), "{cut}");
        assert!(cut.contains("truncated"), "{cut}");

        // A whole gzip stream that stops before the trailer.
        let text = gunzip(&bytes);
        let without_trailer: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        let e = refusal(&gzip(&without_trailer));
        assert!(e.contains("without its trailer (truncated)"), "{e}");

        // One entry changed: the checksum says so.
        let forged = text.replace("agent-1", "agent-9");
        let e = refusal(&gzip(&forged));
        assert!(e.contains("checksum mismatch"), "{e}");

        // Flipped bits inside the compressed stream.
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        let e = refusal(&flipped);
        assert!(e.starts_with("b.cdnbak is not a usable backup"), "{e}");

        assert!(refusal(b"").ends_with("it is empty"));
        let e = refusal(b"nodes: [not gzip]\n");
        assert!(
            e.ends_with("not gzip-compressed: not a masterd backup"),
            "{e}"
        );
        let e = refusal(&gzip("{\"format\":\"tarball\"}\n"));
        assert!(e.contains("\"tarball\""), "{e}");
    }

    #[test]
    fn a_newer_format_is_refused_with_what_to_do() {
        let text = gunzip(&encoded()).replace(r#""format_version":2"#, r#""format_version":3"#);
        let e = refusal(&gzip(&text));
        assert!(
            e.contains("format version 3, newer than this masterd reads (2)"),
            "{e}"
        );
    }

    /// A version 1 file, as masterd wrote before recordings were backed up.
    fn version_1() -> Vec<u8> {
        let header = r#"{"format":"cdn-masterd-backup","format_version":1,"created_ms":5,"source_backend":"embedded","master":"m1","counts":{"nodes":1}}"#;
        let entry = r#"{"t":"nodes","k":"agent-1","v":"e30="}"#;
        let body = format!("{header}\n{entry}\n");
        let digest = format!("{:x}", Sha256::digest(body.as_bytes()));
        gzip(&format!(
            "{body}{{\"sha256\":\"{digest}\",\"entries\":1}}\n"
        ))
    }

    #[test]
    fn a_version_1_backup_still_reads() {
        let b = decode(&version_1()[..], "old.cdnbak").unwrap();
        assert_eq!(b.header.format_version, 1);
        assert_eq!(b.entries.len(), 1);
        assert_eq!(b.recordings, Recorded::default());
    }

    /// A backup of `entries()` with two recordings from a data directory.
    fn with_recordings() -> (tempfile::TempDir, Vec<u8>, Recorded) {
        let dir = tempfile::tempdir().unwrap();
        let recs = dir.path().join("recordings");
        std::fs::create_dir_all(recs.join("7")).unwrap();
        let long: Vec<u8> = (0..recordings::CHUNK_BYTES + 100)
            .map(|i| i as u8)
            .collect();
        std::fs::write(recs.join("7/agent-1.rec"), &long).unwrap();
        std::fs::write(recs.join("7/agent-2.rec"), b"{\"short\":1}\n").unwrap();
        let sources = recordings::list(&recs).unwrap();
        let (bytes, _, recorded) = encode(Vec::new(), &entries(), &sources, &origin(), 9).unwrap();
        (dir, bytes, recorded)
    }

    #[test]
    fn recordings_travel_checked_and_in_order() {
        let (_dir, bytes, recorded) = with_recordings();
        assert_eq!(recorded.files, 2);
        assert_eq!(recorded.bytes, recordings::CHUNK_BYTES as u64 + 100 + 12);
        let mut seen: Vec<(String, u64, usize)> = Vec::new();
        let b = decode_with(&bytes[..], "b.cdnbak", &mut |n, o, d| {
            seen.push((n.to_string(), o, d.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(b.recordings, recorded);
        assert_eq!(b.entries, entries());
        assert_eq!(
            seen,
            [
                ("7/agent-1.rec".to_string(), 0, recordings::CHUNK_BYTES),
                (
                    "7/agent-1.rec".to_string(),
                    recordings::CHUNK_BYTES as u64,
                    100
                ),
                ("7/agent-2.rec".to_string(), 0, 12),
            ]
        );

        // Covered by the checksum like the rest.
        let text = gunzip(&bytes);
        let e = refusal(&gzip(&text.replace("7/agent-2.rec", "7/agent-3.rec")));
        assert!(e.contains("checksum mismatch"), "{e}");
    }

    /// `text` with its trailer's sha256 made right again: what a forger
    /// (or a bug) would write, for checks past the checksum.
    fn resealed(text: &str) -> Vec<u8> {
        let body_end = text.trim_end().rfind('\n').unwrap() + 1;
        let (body, trailer) = text.split_at(body_end);
        let digest = format!("{:x}", Sha256::digest(body.as_bytes()));
        let mut t: serde_json::Value = serde_json::from_str(trailer.trim_end()).unwrap();
        t["sha256"] = digest.into();
        gzip(&format!("{body}{t}\n"))
    }

    #[test]
    fn hostile_or_inconsistent_recordings_are_refused() {
        let (_dir, bytes, _) = with_recordings();
        let text = gunzip(&bytes);
        let e = refusal(&resealed(
            &text.replace("7/agent-2.rec", "../../etc/cron.d/x.rec"),
        ));
        assert!(e.contains("is not `<exec id>/<node>.rec`"), "{e}");
        let e = refusal(&resealed(
            &text.replace(&format!(r#""o":{}"#, recordings::CHUNK_BYTES), r#""o":5"#),
        ));
        assert!(e.contains("out of order"), "{e}");
        let e = refusal(&resealed(
            &text.replace(r#""recordings":2"#, r#""recordings":1"#),
        ));
        assert!(e.contains("the trailer counts 1 recordings"), "{e}");
    }

    #[test]
    fn writing_is_atomic_and_never_replaces_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.cdnbak");
        let target = |replace| Target::File {
            path: &path,
            replace,
        };
        let w = write_atomically(target(false), &entries(), &[], &origin(), 5).unwrap();
        assert_eq!(w.bytes, std::fs::metadata(&path).unwrap().len());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let e = write_atomically(target(false), &[], &[], &origin(), 6).unwrap_err();
        assert!(matches!(e, BackupError::Exists { .. }), "{e}");
        assert_eq!(read_file(&path).unwrap().header.created_ms, 5);
        write_atomically(target(true), &[], &[], &origin(), 6).unwrap();
        assert_eq!(read_file(&path).unwrap().header.created_ms, 6);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn rotation_keeps_the_newest_and_touches_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let at = |ms| {
            write_atomically(Target::Scheduled(dir.path()), &[], &[], &origin(), ms)
                .unwrap()
                .path
        };
        let first = at(1_764_490_500_000);
        assert_eq!(
            first.file_name().unwrap(),
            "masterd-backup-20251130T081500Z.cdnbak"
        );
        let second = at(1_764_490_500_400); // same second
        assert_eq!(
            second.file_name().unwrap(),
            "masterd-backup-20251130T081500Z-2.cdnbak"
        );
        let third = at(1_764_490_560_000);
        for other in [
            "notes.txt",
            "masterd-backup-latest.cdnbak",
            "masterd-backup-x.cdnbak.tmp",
        ] {
            std::fs::write(dir.path().join(other), "keep me").unwrap();
        }
        assert_eq!(
            scheduled_backups(dir.path()).unwrap(),
            [third.clone(), second.clone(), first.clone()]
        );
        assert_eq!(rotate(dir.path(), 2).unwrap(), std::slice::from_ref(&first));
        assert!(!first.exists() && second.exists() && third.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_schedule_writes_every_interval_and_rotates() {
        let data = tempfile::tempdir().unwrap();
        let backend = Arc::new(EmbeddedStore::open(data.path()).unwrap());
        let (store, writer) = Store::start(backend.clone());
        store
            .write(vec![crate::store::Write::Node(NodeRecord {
                name: "agent-1".into(),
                ..Default::default()
            })])
            .await
            .unwrap();
        let dir = data.path().join("backups");
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("masterd-backup-20000101T000000Z.cdnbak");
        std::fs::write(&old, "an old one").unwrap();
        std::fs::write(dir.join("README"), "not a backup").unwrap();

        let metrics = Arc::new(Metrics::default());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let config = BackupConfig {
            interval: std::time::Duration::from_secs(3600),
            dir: None,
            keep: 1,
        };
        let task = tokio::spawn({
            let (store, metrics, shutdown) = (store.clone(), metrics.clone(), shutdown.clone());
            let data_dir = data.path().to_path_buf();
            async move {
                let on_written: OnWritten = Box::new(move |p: &Path, ms| {
                    let _ = tx.send((p.to_path_buf(), ms));
                });
                schedule(
                    store,
                    config,
                    data_dir,
                    origin(),
                    metrics,
                    on_written,
                    shutdown,
                )
                .await
            }
        });
        let start = tokio::time::Instant::now();
        let (first, _) = rx.recv().await.unwrap();
        assert!(start.elapsed() >= std::time::Duration::from_secs(3600));
        assert!(!old.exists(), "rotated away");
        let (second, ms) = rx.recv().await.unwrap();
        assert!(start.elapsed() >= std::time::Duration::from_secs(7200));
        assert!(!first.exists() && second.exists());
        assert_eq!(
            scheduled_backups(&dir).unwrap(),
            std::slice::from_ref(&second)
        );
        assert!(dir.join("README").exists());
        let b = read_file(&second).unwrap();
        assert_eq!(b.entries, backend.export().await.unwrap());
        assert_eq!(b.header.created_ms, ms);

        let text = metrics.render();
        assert!(
            text.contains("cdn_backups_total{result=\"ok\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "cdn_backup_last_success_timestamp_seconds {}",
                ms / 1000
            )),
            "{text}"
        );
        assert!(text.contains("cdn_backup_interval_seconds 3600"), "{text}");
        shutdown.cancel();
        task.await.unwrap();
        assert!(metrics.render().contains("cdn_backup_interval_seconds 0"));
        writer.close().await;
    }
}
