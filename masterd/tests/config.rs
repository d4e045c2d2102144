//! masterd refuses bad configuration at start, naming file, line and key.

use std::process::Command;

fn run_with(yaml: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.yml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_masterd"))
        .arg("-c")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_key_is_refused_with_line_and_key() {
    let (code, err) = run_with("grpc:\n  addr: 127.0.0.1:0\n  max_streams: 10\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("master.yml:3"), "{err}");
    assert!(err.contains("grpc.max_streams"), "{err}");
}

#[test]
fn bad_duration_is_refused_with_line_and_key() {
    let (code, err) = run_with("heartbeat:\n  interval: 10 parsecs\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("master.yml:2"), "{err}");
    assert!(err.contains("heartbeat.interval"), "{err}");
}

#[test]
fn bad_yaml_is_refused_with_line() {
    let (code, err) = run_with("grpc:\n  addr: [127.0.0.1:0\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("master.yml:"), "{err}");
}

#[test]
fn out_of_range_values_are_refused() {
    let (code, err) = run_with("reconnect:\n  jitter: 3\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains("reconnect.jitter") && err.contains("out of range"),
        "{err}"
    );
    let (code, err) = run_with("heartbeat:\n  offline_threshold: 0\n");
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("heartbeat.offline_threshold"), "{err}");
}

#[test]
fn missing_file_is_a_config_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_masterd"))
        .args(["-c", "/nonexistent/master.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn second_master_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.yml");
    let yaml = format!(
        "grpc:\n  addr: 127.0.0.1:0\ndata_dir: {}\n",
        dir.path().join("d").display()
    );
    std::fs::write(&path, yaml).unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_masterd"))
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(first.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening"), "{line}");
    let second = Command::new(env!("CARGO_BIN_EXE_masterd"))
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another masterd"), "{err}");
}

#[test]
fn a_missing_or_bad_tls_file_is_a_configuration_error_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let (code, err) = run_with(&format!(
        "grpc:\n  addr: 127.0.0.1:0\ntls:\n  cert_file: {0}\n  key_file: {0}\n",
        missing.display()
    ));
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains("key `tls.cert_file`") && err.contains("no such file"),
        "{err}"
    );
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let (code, err) = run_with(&format!(
        "grpc:\n  addr: 127.0.0.1:0\ntls:\n  cert_file: {0}\n  key_file: {0}\n",
        junk.display()
    ));
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("key `tls.cert_file`"), "{err}");
}
