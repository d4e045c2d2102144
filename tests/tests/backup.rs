//! `masterd backup` and `masterd restore`: a backup of a running fleet
//! restores into a fresh data directory, and a master started on it has the
//! same nodes, config history, users, join tokens and CA, so the agents and
//! the old credentials carry on as if nothing happened.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cdn_tests::{Agent, CtlOutput, Fleet, Master, TEST_MASTER_YML, bin, ctl_bare, wait_for};
use serde_json::Value;

/// Runs `masterd` with `args` and nothing added (no credential, no master).
fn masterd<I, S>(args: I) -> CtlOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(bin("masterd"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run masterd")
        .into()
}

/// What an admin holding `credential` sees of the master at `addr`.
struct Admin {
    credential: PathBuf,
    addr: String,
}

impl Admin {
    fn ctl(&self, args: &[&str]) -> CtlOutput {
        let mut all: Vec<&OsStr> = vec![
            OsStr::new("--credential"),
            self.credential.as_os_str(),
            OsStr::new("--master"),
            OsStr::new(&self.addr),
        ];
        all.extend(args.iter().map(OsStr::new));
        ctl_bare(all)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert_eq!(out.code, Some(0), "cdnctl {args:?}: {}", out.stderr);
        out.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("json")
    }

    fn manage(&self, args: &[&str]) -> String {
        let mut all: Vec<&OsStr> = vec![
            OsStr::new("--credential"),
            self.credential.as_os_str(),
            OsStr::new("--master"),
            OsStr::new(&self.addr),
        ];
        all.extend(args.iter().map(OsStr::new));
        let out = masterd(all);
        assert_eq!(out.code, Some(0), "masterd {args:?}: {}", out.stderr);
        out.stdout
    }

    /// Node names with their status and whether their stream is open.
    fn nodes(&self) -> Vec<(String, String, bool)> {
        let Value::Array(nodes) = self.json(&["nodes", "list", "-o", "json"]) else {
            panic!("nodes list is not an array");
        };
        let mut out: Vec<_> = nodes
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap_or_default().to_string(),
                    n["status"].as_str().unwrap_or_default().to_string(),
                    n["stream_open"] == true,
                )
            })
            .collect();
        out.sort();
        out
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// `len` hex digits of a fixed pseudo-random sequence (xorshift).
fn noise(len: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(len);
    out
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn a_restored_master_carries_on_with_the_same_agents_history_and_credentials() {
    let mut fleet = Fleet::start(2);
    let dir = fleet.dir.path().to_path_buf();
    let admin = Admin {
        credential: fleet.master.credential(),
        addr: fleet.master.admin_addr.to_string(),
    };
    // Incompressible enough that the backup spans several 1 MiB chunks.
    let text = format!("cache:\n  size: 10g\nblob: {}\n", noise(3 << 20));
    let cfg = write(&dir, "edge.yml", &text);
    admin.ok(&["config", "push", &cfg, "-m", "before the backup"]);
    let alice = fleet.master.add_user("alice", "operator");
    admin.manage(&["token", "create", "--description", "spare"]);
    // A recorded exec session: its recording travels in the backup.
    let said = admin.ok(&[
        "exec",
        "agent-1",
        "--",
        "sh",
        "-c",
        "echo said before the backup",
    ]);
    assert_eq!(said, "said before the backup\n");
    let recorded = admin.json(&["exec", "history", "-o", "json"]);
    let exec_id = recorded[0]["exec_id"]
        .as_u64()
        .expect("an exec id")
        .to_string();
    assert_ne!(recorded[0]["recording_id"], 0, "{recorded}");
    let cast = admin.ok(&["exec", "replay", &exec_id, "-o", "asciicast"]);

    let file = dir.join("fleet.cdnbak");
    let out = admin.manage(&["backup", path(&file)]);
    assert!(
        out.starts_with(&format!("wrote {}: ", file.display())),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("recordings") && l.contains(" 1 (")),
        "{out}"
    );
    assert!(std::fs::metadata(&file).unwrap().len() > 1 << 20);
    assert!(
        out.lines().any(|l| l.split_whitespace().eq(["nodes", "2"])),
        "{out}"
    );
    // Never replaced by accident; replaced when asked.
    let again = fleet.master.manage(["backup", path(&file)]);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    let forced = fleet.master.manage(["backup", "--force", path(&file)]);
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    // Admins only, and audited.
    let by_operator = masterd([
        OsStr::new("--credential"),
        alice.as_os_str(),
        OsStr::new("--master"),
        OsStr::new(&admin.addr),
        OsStr::new("backup"),
        dir.join("alice.cdnbak").as_os_str(),
    ]);
    assert_eq!(by_operator.code, Some(1));
    assert!(
        by_operator.stderr.contains("permission denied"),
        "{}",
        by_operator.stderr
    );
    assert!(!dir.join("alice.cdnbak").exists());
    // The first backup and the forced one (each written once its stream
    // ended), and the operator's refusal, audited as every refusal is.
    let audited = wait_for("both backups in the audit log", || {
        let Value::Array(entries) = admin.json(&["audit", "--action", "backup", "-o", "json"])
        else {
            panic!("audit is not an array");
        };
        (entries.len() >= 3).then_some(entries)
    });
    let (refused, audited): (Vec<Value>, Vec<Value>) =
        audited.into_iter().partition(|e| e["user"] == "alice");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["result"], "failed");
    assert!(
        refused[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("this needs admin")),
        "{refused:?}"
    );
    let outcomes: Vec<(&str, &str, &str)> = audited
        .iter()
        .map(|e| {
            (
                e["user"].as_str().unwrap_or_default(),
                e["result"].as_str().unwrap_or_default(),
                e["target"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(outcomes, [("admin", "ok", "store"); 2], "{audited:?}");
    assert!(
        audited[0]["detail"]
            .as_str()
            .unwrap()
            .contains(" entries, ")
    );
    // The running master holds its embedded store: --offline says what to
    // do instead.
    let offline = masterd([
        "backup",
        "--offline",
        path(&dir.join("offline.cdnbak")),
        "-c",
        path(&fleet.master.config),
    ]);
    assert_eq!(offline.code, Some(1));
    assert!(
        offline.stderr.contains("in use") && offline.stderr.contains("without --offline"),
        "{}",
        offline.stderr
    );

    let nodes = admin.nodes();
    let history = admin.json(&["config", "history", "-o", "json"]);
    let tokens = admin.manage(&["token", "list"]);
    let users = admin.manage(&["user", "list"]);
    assert!(users.contains("alice"), "{users}");

    // Everything stops; the old data directory stays as it is.
    let agents: Vec<(String, String)> = fleet
        .agents
        .iter()
        .map(|a| (a.name.clone(), std::fs::read_to_string(&a.config).unwrap()))
        .collect();
    for a in &mut fleet.agents {
        a.kill();
    }
    let port = fleet.master.addr.port();
    fleet.master.terminate();
    let old_data = fleet.master.data_dir();

    // Never over a store or recordings: the old directory's recording is
    // found first (the file is read before the store is opened); without
    // it, the store's own refusal.
    let into_old = masterd(["restore", path(&file), "--data-dir", path(&old_data)]);
    assert_eq!(into_old.code, Some(1));
    assert!(
        into_old.stderr.contains("recording ") && into_old.stderr.contains("exists already"),
        "{}",
        into_old.stderr
    );
    let old_recording = old_data.join("recordings").join(&exec_id);
    let kept = dir.join("kept-recording");
    std::fs::rename(&old_recording, &kept).unwrap();
    let into_old = masterd(["restore", path(&file), "--data-dir", path(&old_data)]);
    assert_eq!(into_old.code, Some(1));
    assert!(
        into_old.stderr.contains("not empty") && into_old.stderr.contains("nodes: 2"),
        "{}",
        into_old.stderr
    );
    assert!(
        !old_recording.exists(),
        "a refused restore puts no recording in place"
    );

    let restored = dir.join("restored");
    let out = masterd([
        "restore",
        path(&file),
        "--data-dir",
        path(&restored.join("data")),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("restored "), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("recordings") && l.contains(" 1 (")),
        "{}",
        out.stdout
    );
    // Restoring again into the same directory: its recordings are there
    // already, so nothing is restored, replaced or left aside.
    let again = masterd([
        "restore",
        path(&file),
        "--data-dir",
        path(&restored.join("data")),
    ]);
    assert_eq!(again.code, Some(1), "{}", again.stdout);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    let recordings = restored.join("data").join("recordings");
    let hidden: Vec<_> = std::fs::read_dir(&recordings)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");

    // Same port: the agents' configs name it.
    fleet.master = Master::start(&restored, TEST_MASTER_YML, port);
    for (name, yaml) in &agents {
        let agent = Agent::start(&dir, &format!("{name}-restored"), name, yaml);
        fleet.agents.push(agent);
    }
    let online: Vec<_> = nodes
        .iter()
        .map(|(name, _, _)| (name.clone(), "online".to_string(), true))
        .collect();
    wait_for("both agents back on the restored master", || {
        (admin.nodes() == online).then_some(())
    });

    // The old admin credential works (it did all of the above), and so
    // does alice's; nothing was enrolled again (token use counts agree).
    assert_eq!(admin.json(&["config", "history", "-o", "json"]), history);
    assert_eq!(admin.ok(&["config", "show", "1"]), text);
    // The recording came back with the rest: the same session, the same
    // bytes, replayed by the restored master.
    assert_eq!(
        admin.ok(&["exec", "replay", &exec_id]),
        "said before the backup\n"
    );
    assert_eq!(
        admin.ok(&["exec", "replay", &exec_id, "-o", "asciicast"]),
        cast
    );
    assert_eq!(admin.manage(&["token", "list"]), tokens);
    let users_now = admin.manage(&["user", "list"]);
    for line in users.lines() {
        assert!(
            users_now.contains(line),
            "{line:?} missing from\n{users_now}"
        );
    }
    let as_alice = Admin {
        credential: alice,
        addr: admin.addr.clone(),
    };
    assert!(as_alice.ok(&["whoami"]).contains("alice"));
    for n in admin
        .json(&["config", "status", "-o", "json"])
        .as_array()
        .unwrap()
    {
        assert_eq!(n["applied_version"], 1, "{n}");
    }

    // And the fleet is managed as before: a new version reaches both.
    let cfg2 = write(&dir, "edge2.yml", "cache:\n  size: 20g\n");
    let out = as_alice.ok(&["config", "push", &cfg2, "-m", "after the restore"]);
    assert_eq!(out.matches("applied").count(), 2, "{out}");
}

#[test]
fn damaged_and_foreign_files_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let restore = |file: &Path| masterd(["restore", path(file), "--data-dir", path(&data)]);

    let missing = restore(&dir.path().join("nope.cdnbak"));
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("nope.cdnbak"), "{}", missing.stderr);

    let foreign = dir.path().join("notes.cdnbak");
    std::fs::write(&foreign, "not a backup\n").unwrap();
    let out = restore(&foreign);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("notes.cdnbak is not a usable backup: it is not gzip-compressed"),
        "{}",
        out.stderr
    );

    // No store where one is expected: nothing is backed up (or made).
    let src = dir.path().join("src");
    let whole = dir.path().join("whole.cdnbak");
    std::fs::create_dir_all(&src).unwrap();
    let out = masterd([
        "backup",
        "--offline",
        path(&whole),
        "--data-dir",
        path(&src),
    ]);
    assert_eq!(out.code, Some(1), "no store in src yet: {}", out.stdout);
    assert!(out.stderr.contains("no master store"), "{}", out.stderr);
    // A real backup, of what a master makes on its first start, cut short.
    let mut master = Master::start(&dir.path().join("m"), TEST_MASTER_YML, 0);
    master.terminate();
    let out = masterd([
        "backup",
        "--offline",
        path(&whole),
        "--data-dir",
        path(&master.data_dir()),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.cdnbak");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = restore(&cut);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("cut.cdnbak is not a usable backup")
            && out.stderr.contains("truncated"),
        "{}",
        out.stderr
    );
    assert!(!data.exists(), "nothing written for a bad file");

    // The whole one restores, once.
    assert_eq!(restore(&whole).code, Some(0));
    let twice = restore(&whole);
    assert_eq!(twice.code, Some(1));
    assert!(
        twice.stderr.contains("not empty") && twice.stderr.contains("pki: ca.key ca.crt"),
        "{}",
        twice.stderr
    );
}
