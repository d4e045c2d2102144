//! Exec recordings in a backup: which files go in and with how many bytes,
//! the names a backup may carry, and putting restored files in place
//! without ever replacing one.
//!
//! A recording travels as lines `{"r":"<exec id>/<file>.rec","o":offset,
//! "v":base64}` after the store's entries, each file's lines in order from
//! offset 0 (an empty file still has one line). The lines are hashed with
//! the rest, so the trailer's sha256 covers them.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Raw bytes per recording line (64 KiB once in base64).
pub const CHUNK_BYTES: usize = 48 * 1024;

/// One recording to copy into a backup.
#[derive(Debug, Clone)]
pub struct Source {
    /// `<exec id>/<file>.rec`, as the backup names it.
    pub name: String,
    pub path: PathBuf,
    /// Its size when listed: the backup copies that many bytes, so a
    /// session still being recorded is cut where it stood, as a crash of
    /// the master would cut it.
    pub len: u64,
}

/// Recordings restored or copied: how many and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub files: u64,
    pub bytes: u64,
}

/// The recordings under `dir` (the master's `recordings` directory), by
/// exec id then name. A missing directory has none; other entries than
/// `<id>/<name>.rec` are not backed up.
pub fn list(dir: &Path) -> std::io::Result<Vec<Source>> {
    let ids = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut ids: Vec<(u64, PathBuf)> = ids
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    ids.sort_unstable_by_key(|(id, _)| *id);
    let mut out = Vec::new();
    for (id, path) in ids {
        let mut files = Vec::new();
        // The sweeper may delete a whole id while we list.
        let Ok(rd) = std::fs::read_dir(&path) else {
            continue;
        };
        for e in rd.flatten() {
            let Some(file) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let name = format!("{id}/{file}");
            if !valid_name(&name) {
                continue;
            }
            match e.metadata() {
                Ok(m) if m.is_file() => files.push(Source {
                    name,
                    path: e.path(),
                    len: m.len(),
                }),
                _ => {}
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(files);
    }
    Ok(out)
}

/// Whether a backup may carry a recording called `name`:
/// `<decimal exec id>/<file>.rec`, the file name of ASCII letters, digits,
/// `.`, `_` and `-`, not starting with a dot. Nothing else reaches the
/// file system on restore (no `..`, no absolute path, no other directory).
pub fn valid_name(name: &str) -> bool {
    let Some((id, file)) = name.split_once('/') else {
        return false;
    };
    let id_ok = !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && id.parse::<u64>().is_ok();
    let file_ok = file.len() > ".rec".len()
        && file.len() <= 255
        && file.ends_with(".rec")
        && !file.starts_with('.')
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    id_ok && file_ok
}

/// Reads up to `source.len` bytes of a recording in [`CHUNK_BYTES`] pieces
/// and hands each, with its offset, to `line`. Returns false when the file
/// is gone (deleted by retention since it was listed): it is left out.
pub fn copy(
    source: &Source,
    mut line: impl FnMut(u64, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<Option<u64>> {
    let f = match File::open(&source.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut f = f.take(source.len);
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut offset = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match f.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled > 0 || offset == 0 {
            line(offset, &buf[..filled])?;
        }
        offset += filled as u64;
        if filled < buf.len() {
            return Ok(Some(offset));
        }
    }
}

/// Recordings being restored: written first into a hidden directory
/// beside the live ones (removed again if anything fails), then moved into
/// place by [`Staging::commit`] once the store has been restored.
#[derive(Debug)]
pub struct Staging {
    /// The master's recordings directory.
    root: PathBuf,
    /// `<root>/.restore-<random>`, made on the first recording.
    tmp: Option<PathBuf>,
    /// The file being written and its next offset.
    current: Option<(String, File, u64)>,
    names: Vec<String>,
    counted: Counted,
}

impl Staging {
    /// Restores into `root` (the master's recordings directory). Nothing is
    /// made until the first recording arrives.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            tmp: None,
            current: None,
            names: Vec::new(),
            counted: Counted::default(),
        }
    }

    /// What has been staged so far.
    pub fn counted(&self) -> Counted {
        self.counted
    }

    /// Appends `data` at `offset` of recording `name` (its lines come in
    /// order; the decoder checked that). A recording that exists already
    /// on this master is refused: restore never replaces one.
    pub fn write(&mut self, name: &str, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let taken = self.root.join(name);
        if offset == 0 {
            if taken.symlink_metadata().is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "it exists already in {}; restore into a data directory without recordings",
                        self.root.display()
                    ),
                ));
            }
            let tmp = match &self.tmp {
                Some(t) => t.clone(),
                None => {
                    cdn_common::tls::create_private_dir(&self.root)?;
                    let t = self
                        .root
                        .join(format!(".restore-{}", cdn_common::tls::random_text(12)));
                    cdn_common::tls::create_private_dir(&t)?;
                    self.tmp = Some(t.clone());
                    t
                }
            };
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(tmp.join(name.replace('/', "_")))?;
            self.finish_current()?;
            self.current = Some((name.to_string(), file, 0));
            self.names.push(name.to_string());
            self.counted.files += 1;
        }
        let Some((current, file, next)) = self.current.as_mut() else {
            return Err(std::io::Error::other("recording data before its start"));
        };
        if current != name || *next != offset {
            return Err(std::io::Error::other(format!(
                "recording {name} is out of order in the backup"
            )));
        }
        file.write_all(data)?;
        *next += data.len() as u64;
        self.counted.bytes += data.len() as u64;
        Ok(())
    }

    fn finish_current(&mut self) -> std::io::Result<()> {
        if let Some((_, f, _)) = self.current.take() {
            f.sync_all()?;
        }
        Ok(())
    }

    /// Moves every staged recording into place (never over an existing
    /// file) and removes the staging directory.
    pub fn commit(mut self) -> std::io::Result<Counted> {
        self.finish_current()?;
        let Some(tmp) = self.tmp.clone() else {
            return Ok(self.counted);
        };
        let mut dirs = std::collections::BTreeSet::new();
        for name in &self.names {
            let to = self.root.join(name);
            let Some(dir) = to.parent() else {
                continue;
            };
            cdn_common::tls::create_private_dir(dir)?;
            // A link fails if the name is taken; rename would replace it.
            std::fs::hard_link(tmp.join(name.replace('/', "_")), &to)?;
            dirs.insert(dir.to_path_buf());
        }
        for d in dirs.iter().chain(std::iter::once(&self.root)) {
            File::open(d)?.sync_all()?;
        }
        Ok(self.counted)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.current = None;
        if let Some(t) = self.tmp.take() {
            let _ = std::fs::remove_dir_all(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exec_ids_and_plain_file_names_are_recordings() {
        for ok in [
            "1/agent-1.rec",
            "18446744073709551615/a.b_c-d.rec",
            "7/n.s1.rec",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "agent-1.rec",
            "../1/a.rec",
            "1/../a.rec",
            "1/.a.rec",
            "/1/a.rec",
            "1/a/b.rec",
            "x/a.rec",
            "1/a.txt",
            "1/.rec",
            "18446744073709551616/a.rec",
            "1/a b.rec",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn listing_copies_what_was_there_and_staging_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("recordings");
        std::fs::create_dir_all(root.join("12")).unwrap();
        std::fs::create_dir_all(root.join("3")).unwrap();
        std::fs::create_dir_all(root.join("notes")).unwrap();
        let big: Vec<u8> = (0..CHUNK_BYTES * 2 + 10).map(|i| i as u8).collect();
        std::fs::write(root.join("12/agent-1.rec"), &big).unwrap();
        std::fs::write(root.join("3/agent-2.rec"), b"").unwrap();
        std::fs::write(root.join("3/.agent-2.rec.tmp"), b"x").unwrap();
        std::fs::write(root.join("notes/a.rec"), b"x").unwrap();
        let found = list(&root).unwrap();
        let names: Vec<&str> = found.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["3/agent-2.rec", "12/agent-1.rec"]);

        // Copied in order, an empty file as one empty line; restored into
        // another directory byte for byte.
        let restored = dir.path().join("restored");
        let mut staging = Staging::new(restored.clone());
        for s in &found {
            let mut lines = Vec::new();
            let n = copy(s, |o, d| {
                lines.push((o, d.to_vec()));
                Ok(())
            })
            .unwrap();
            assert_eq!(n, Some(s.len));
            for (o, d) in lines {
                staging.write(&s.name, o, &d).unwrap();
            }
        }
        // Lines out of order are refused.
        let e = staging.write("12/agent-1.rec", 5, b"x").unwrap_err();
        assert!(e.to_string().contains("out of order"), "{e}");
        let counted = staging.commit().unwrap();
        assert_eq!(
            counted,
            Counted {
                files: 2,
                bytes: big.len() as u64
            }
        );
        assert_eq!(std::fs::read(restored.join("12/agent-1.rec")).unwrap(), big);
        assert_eq!(std::fs::read(restored.join("3/agent-2.rec")).unwrap(), b"");
        let left: Vec<_> = std::fs::read_dir(&restored).unwrap().flatten().collect();
        assert_eq!(left.len(), 2, "no staging directory left: {left:?}");

        // A second restore over them is refused and leaves nothing behind.
        let mut again = Staging::new(restored.clone());
        let e = again.write("3/agent-2.rec", 0, b"").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        again.write("4/agent-2.rec", 0, b"new").unwrap();
        drop(again);
        assert!(!restored.join("4").exists());
        assert_eq!(std::fs::read_dir(&restored).unwrap().count(), 2);

        // A file gone since it was listed is left out.
        let gone = Source {
            name: "9/x.rec".into(),
            path: root.join("9/x.rec"),
            len: 3,
        };
        assert_eq!(copy(&gone, |_, _| Ok(())).unwrap(), None);
    }
}
