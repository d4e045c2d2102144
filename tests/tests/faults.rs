//! Faults a real master meets (issue 15's fault suite starts here): a full
//! disk under the master's store, made by the test with a small tmpfs.

use std::path::Path;

use cdn_tests::disk::SmallDisk;
use cdn_tests::{Master, TEST_MASTER_YML, ctl_at};

fn push(master: &Master, file: &Path) -> cdn_tests::CtlOutput {
    ctl_at(
        &master.addr.to_string(),
        ["config", "push", file.to_str().unwrap(), "--no-wait"],
    )
}

#[test]
fn a_full_disk_fails_writes_and_the_store_works_again_once_there_is_room() {
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    // The master's data directory (store, CA, credentials) on the small
    // disk; its config and log beside the test. Over TLS, so a restart
    // makes its server certificate again.
    let data = disk.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::create_dir(work.path().join("m")).unwrap();
    std::os::unix::fs::symlink(&data, work.path().join("m/data")).unwrap();
    let master = Master::start(&work.path().join("m"), TEST_MASTER_YML, 0);
    let small = work.path().join("small.yml");
    std::fs::write(&small, "cache: 10g\n").unwrap();
    let out = push(&master, &small);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // Disk full: a push that needs room fails with a clear error.
    let filler = disk.fill();
    let big = work.path().join("big.yml");
    let body: String = (0..60_000)
        .map(|i| {
            format!(
                "k{i}: \"{:032x}\"\n",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
        })
        .collect();
    std::fs::write(&big, &body).unwrap();
    let out = push(&master, &big);
    assert_ne!(out.code, Some(0), "a push onto a full disk: {}", out.stdout);
    assert!(out.stderr.contains("store"), "{}", out.stderr);

    // Room again: the same master takes writes, without a restart (redb
    // alone would answer "Previous I/O error occurred" until reopened).
    std::fs::remove_file(&filler).unwrap();
    let out = push(&master, &big);
    assert_eq!(out.code, Some(0), "after freeing space: {}", out.stderr);
    assert!(
        master
            .log_text()
            .contains("store opened again after an I/O error"),
        "{}",
        master.log_text()
    );

    // Full again, and a restart: with nothing new to write the master
    // starts, and every acknowledged version is there.
    let _filler = disk.fill();
    let mut master = master;
    master.restart();
    let history = ctl_at(
        &master.addr.to_string(),
        ["config", "history", "-o", "json"],
    );
    assert_eq!(
        history.code,
        Some(0),
        "restart on a full disk: {}",
        history.stderr
    );
    let versions: Vec<serde_json::Value> = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(versions.len(), 2, "{}", history.stdout);
    let shown = ctl_at(&master.addr.to_string(), ["config", "show", "1"]);
    assert!(shown.stdout.contains("cache: 10g"), "{}", shown.stdout);
    drop(master);
}

/// A store that cannot write (the master's test hook fails every write as
/// a full disk does, while a file exists): exec and credential changes are
/// refused with a clear message and never run; once it can write again,
/// they run and are in the log. A real full disk cannot be timed this way:
/// the store reuses pages its last transactions freed, so a small audit
/// entry may still fit (the test above covers the real disk).
#[test]
fn when_the_store_cannot_write_exec_and_credential_changes_are_refused_unrecorded_never_run() {
    let work = tempfile::tempdir().unwrap();
    let broken = work.path().join("store-cannot-write");
    let master = Master::start_with_env(
        &work.path().join("m"),
        TEST_MASTER_YML,
        std::net::Ipv4Addr::LOCALHOST.into(),
        0,
        &[],
        &[("MASTERD_TEST_FAIL_WRITES_WHILE", broken.to_str().unwrap())],
    );
    let addr = master.addr.to_string();
    let yaml = cdn_tests::agent_yml(work.path(), "agent-1", &addr);
    let _agent = cdn_tests::Agent::start(work.path(), "agent-1", "agent-1", &yaml);
    cdn_tests::wait_for("agent-1 online", || {
        let out = ctl_at(&addr, ["nodes", "show", "agent-1", "-o", "json"]);
        (out.code == Some(0) && out.stdout.replace(" ", "").contains("\"stream_open\":true"))
            .then_some(())
    });
    let exec = |marker: &Path| {
        ctl_at(
            &addr,
            ["exec", "agent-1", "--", "touch", marker.to_str().unwrap()],
        )
    };
    let first = work.path().join("before-full");
    let out = exec(&first);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(first.exists());

    std::fs::write(&broken, "").unwrap();

    let marker = work.path().join("while-full");
    let out = exec(&marker);
    assert_ne!(
        out.code,
        Some(0),
        "exec ran while the store could not write: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("the audit log cannot be written")
            && out.stderr.contains("nothing was run"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("cannot reach"), "{}", out.stderr);
    let token = master.manage(["token", "create"]);
    assert_ne!(token.code, Some(0), "{}", token.stdout);
    assert!(
        token.stderr.contains("the audit log cannot be written"),
        "{}",
        token.stderr
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!marker.exists(), "the command ran unrecorded");

    // Writes work again: exec runs and is in the log.
    std::fs::remove_file(&broken).unwrap();
    let after = work.path().join("after-full");
    let out = exec(&after);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(after.exists());
    let audit = ctl_at(&addr, ["audit", "--action", "exec", "-o", "json"]);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&audit.stdout).unwrap();
    let runs: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "exec")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|d| !d.contains("while-full")), "{runs:?}");
    let scraped = master.log_text();
    assert!(scraped.contains("cannot write the audit log"), "{scraped}");
}
