//! Prometheus' own tools against a real masterd: `promtool` (checks the
//! exposition and the shipped rules) and a real `prometheus` server
//! ([`PrometheusServer`]) scraping a master on a free loopback port, both
//! from Debian's `prometheus` package. Plain HTTP helpers read the
//! master's metrics port ([`http_get_with`]).
//!
//! Without the binaries a test is skipped with a loud message
//! ([`require_promtool!`](crate::require_promtool),
//! [`require_prometheus!`](crate::require_prometheus)), except when the
//! `CI` environment variable is set: then it fails, as for etcd.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Proc, free_port};

/// What a test prints when it skips for want of promtool.
pub const PROMTOOL_MISSING: &str = "SKIPPED: promtool not found (Debian package prometheus)";

/// What a test prints when it skips for want of the Prometheus server.
pub const PROMETHEUS_MISSING: &str = "SKIPPED: prometheus not found (Debian package prometheus)";

/// Longest wait for the Prometheus server to be ready.
pub const PROMETHEUS_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for one HTTP answer from a test server.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// A binary on `PATH`, else in Debian's `/usr/bin`.
fn find(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .chain([Path::new("/usr/bin").join(name)])
        .find(|p| p.is_file())
}

/// `name`, or None after a loud skip message `missing`; panics in CI.
fn or_skip(name: &str, missing: &str) -> Option<PathBuf> {
    find(name).or_else(|| {
        crate::missing_binary(name, "prometheus", missing);
        None
    })
}

/// The promtool binary, or None after a loud skip message (a panic in CI).
pub fn promtool_or_skip() -> Option<PathBuf> {
    or_skip("promtool", PROMTOOL_MISSING)
}

/// The prometheus binary, or None after a loud skip message (a panic in
/// CI).
pub fn prometheus_or_skip() -> Option<PathBuf> {
    or_skip("prometheus", PROMETHEUS_MISSING)
}

/// The promtool binary, or `return` from the test after a loud skip
/// message when it is not installed; in CI a missing promtool fails.
#[macro_export]
macro_rules! require_promtool {
    () => {
        match $crate::promtool_or_skip() {
            Some(bin) => bin,
            None => return,
        }
    };
}

/// The prometheus binary, or `return` from the test after a loud skip
/// message when it is not installed; in CI it fails.
#[macro_export]
macro_rules! require_prometheus {
    () => {
        match $crate::prometheus_or_skip() {
            Some(bin) => bin,
            None => return,
        }
    };
}

/// The repository's `deploy/prometheus/` directory.
pub fn deploy_prometheus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy")
        .join("prometheus")
}

/// What an HTTP GET got: status, `Content-Type`, body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// One HTTP/1.0 GET of `path` on `addr` with extra `headers` (`Name:
/// value`); None when nothing answered within [`HTTP_TIMEOUT`].
pub fn http_get_with(addr: SocketAddr, path: &str, headers: &[&str]) -> Option<HttpAnswer> {
    let mut s = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).ok()?;
    s.set_read_timeout(Some(HTTP_TIMEOUT)).ok()?;
    s.set_write_timeout(Some(HTTP_TIMEOUT)).ok()?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Some(HttpAnswer {
        status,
        content_type,
        body: body.to_string(),
    })
}

/// What a promtool run printed.
#[derive(Debug)]
pub struct ToolOutput {
    pub code: Option<i32>,
    /// stdout and stderr together (promtool splits its findings between
    /// them across versions).
    pub text: String,
}

/// Runs `promtool` with `args`, `stdin` fed to it.
pub fn promtool(bin: &Path, args: &[&str], stdin: &str) -> ToolOutput {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run promtool: {e}"));
    let mut input = child.stdin.take().expect("promtool stdin");
    let stdin = stdin.to_string();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let out = child.wait_with_output().expect("promtool output");
    let _ = feeder.join();
    ToolOutput {
        code: out.status.code(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A Prometheus server of a test: its own config and storage in a
/// temporary directory, on a free loopback port; killed when dropped.
pub struct PrometheusServer {
    proc: Proc,
    /// Where its HTTP API answers.
    pub addr: SocketAddr,
    /// Last, removed after the process was killed.
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts `bin` with `config` (prometheus.yml text; a relative
    /// `rule_files` entry is read beside it, in the temporary directory)
    /// and waits until `/-/ready` answers 200.
    pub fn start(bin: &Path, config: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("prometheus-")
            .tempdir()
            .expect("tempdir for prometheus");
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("write prometheus.yml");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn");
        let mut proc = Proc::spawn(
            "prometheus",
            &mut cmd,
            Stdio::null(),
            dir.path().join("prometheus.log"),
        );
        let deadline = Instant::now() + PROMETHEUS_READY_TIMEOUT;
        loop {
            if http_get_with(addr, "/-/ready", &[]).is_some_and(|a| a.status == 200) {
                break;
            }
            assert!(
                proc.is_running(),
                "prometheus exited while starting:\n{}",
                proc.log_text()
            );
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within {PROMETHEUS_READY_TIMEOUT:?}:\n{}",
                proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            proc,
            addr,
            _dir: dir,
        }
    }

    /// GET `path` of the HTTP API, parsed as JSON; None when it did not
    /// answer 200 with JSON.
    pub fn api(&self, path: &str) -> Option<serde_json::Value> {
        let a = http_get_with(self.addr, path, &[])?;
        (a.status == 200)
            .then(|| serde_json::from_str(&a.body).ok())
            .flatten()
    }

    /// The result vector of the PromQL instant `query`, or None when the
    /// API did not answer.
    pub fn query(&self, query: &str) -> Option<Vec<serde_json::Value>> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let v = self.api(&format!("/api/v1/query?query={encoded}"))?;
        v["data"]["result"].as_array().cloned()
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// Kills it (SIGKILL) and waits until it is gone: its port refuses
    /// connections from now on.
    pub fn kill(&mut self) {
        self.proc.kill();
    }
}

/// A tiny HTTP/1.1 server on a free loopback port serving `/metrics` with
/// the text a test sets ([`TextExporter::set`]): an exporter whose values
/// the test controls, for a real Prometheus to scrape. Other paths answer
/// 404. Its thread ends with the process.
pub struct TextExporter {
    addr: SocketAddr,
    text: std::sync::Arc<std::sync::Mutex<String>>,
}

impl TextExporter {
    /// Starts serving an empty exposition.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the exporter");
        let addr = listener.local_addr().expect("exporter address");
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let served = std::sync::Arc::clone(&text);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let served = std::sync::Arc::clone(&served);
                std::thread::spawn(move || serve_exposition(conn, &served));
            }
        });
        Self { addr, text }
    }

    /// What `/metrics` answers from now on (Prometheus text format 0.0.4).
    pub fn set(&self, text: &str) {
        *self.text.lock().unwrap_or_else(|p| p.into_inner()) = text.to_string();
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Answers the requests of one connection (keep-alive, as Prometheus
/// scrapes) until the peer closes it.
fn serve_exposition(conn: TcpStream, text: &std::sync::Mutex<String>) {
    use std::io::BufRead;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = std::io::BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        // Headers, up to the blank line.
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => return,
                Ok(_) if header == "\r\n" || header == "\n" => break,
                Ok(_) => {}
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
            (
                "200 OK",
                text.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            )
        } else {
            ("404 Not Found", "not found\n".to_string())
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A prometheus.yml scraping `targets` every `interval` (`"1s"`) under the
/// job name `edge`, for [`PrometheusServer::start`].
pub fn scrape_config(targets: &[SocketAddr], interval: &str) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\nscrape_configs:\n  - job_name: edge\n    scrape_interval: {interval}\n    scrape_timeout: {interval}\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    )
}
