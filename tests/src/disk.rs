//! A small tmpfs the test mounts (and unmounts on drop), to fill a disk
//! under a running process. Needs root or CAP_SYS_ADMIN: elsewhere
//! [`SmallDisk::mount`] says so loudly and gives None (in CI it fails).

use std::path::PathBuf;
use std::process::Command;

/// A tmpfs of a given size mounted on a fresh directory.
pub struct SmallDisk {
    /// The mount point.
    pub dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`4m`); None, after a loud message, where
    /// this process may not mount (a failure when CI is set).
    pub fn mount(size: &str) -> Option<Self> {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("disk");
        std::fs::create_dir(&dir).expect("mkdir");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                !crate::in_ci(),
                "cannot mount a tmpfs and CI is set, so this test may not skip (run as root)"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!!\n!!! SKIPPED: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); the full-disk test did not run\n!!!!!!!!\n"
            );
            return None;
        }
        Some(Self {
            dir,
            _parent: parent,
        })
    }

    /// Fills what is left with one file; returns its path (remove it to
    /// make room again).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let filler = self.dir.join("filler");
        let mut f = std::fs::File::create(&filler).expect("create filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        // Smaller pieces fill the last partial chunk.
        while f.write_all(&chunk[..512]).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
