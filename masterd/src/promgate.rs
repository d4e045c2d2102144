//! Prometheus gates of a staged rollout: a gate is `QUERY OP NUMBER`
//! ([`PromGate`]), read with one instant query against the operator's
//! Prometheus (`GET /api/v1/query`, [`PromClient`]). Every sample the query
//! returns must satisfy the comparison; the worst sample decides and is
//! reported ([`GateOutcome`]). A gate that cannot be read (no data,
//! Prometheus unreachable, slow or answering an error) fails: a rollout
//! never goes on on a reading it did not get.
//!
//! The query may name the rollout's nodes: `{{nodes}}` becomes a regular
//! expression matching exactly the names given (each escaped, joined with
//! `|`, and escaped again for a PromQL double-quoted string), `{{wave}}`
//! and `{{version}}` the numbers. Write it inside double quotes:
//! `rate(errors_total{node=~"{{nodes}}"}[1m]) < 0.01`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::error::MasterError;

/// Longest answer read from Prometheus, bytes: a query returning more
/// series than a gate can mean is refused rather than buffered.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// Longest gate text accepted, bytes.
pub const MAX_GATE_BYTES: usize = 4096;

/// Template variables a query may use.
const VARIABLES: [&str; 3] = ["nodes", "wave", "version"];

/// How a sample is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Comparison {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    /// Whether `value OP threshold` holds; NaN never does.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        match self {
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Eq => value == threshold,
            Self::Ne => value != threshold,
        }
    }

    /// How far `value` is from failing (larger is safer), to pick the
    /// worst of the passing samples.
    fn margin(self, value: f64, threshold: f64) -> f64 {
        match self {
            Self::Lt | Self::Le => threshold - value,
            Self::Gt | Self::Ge => value - threshold,
            Self::Eq => -(value - threshold).abs(),
            Self::Ne => (value - threshold).abs(),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Why a gate's text is not a gate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("gate `{0}`: no comparison at the end; write QUERY < NUMBER")]
    NoComparison(String),
    #[error("gate `{gate}`: threshold `{threshold}` is not a number")]
    BadThreshold { gate: String, threshold: String },
    #[error("gate `{0}`: empty query")]
    EmptyQuery(String),
    #[error(
        "gate `{gate}`: unknown template variable `{{{{{name}}}}}` (known: {{{{nodes}}}}, {{{{wave}}}}, {{{{version}}}})"
    )]
    UnknownVariable { gate: String, name: String },
    #[error("gate `{0}...`: longer than {MAX_GATE_BYTES} bytes")]
    TooLong(String),
}

/// One Prometheus gate: `QUERY OP NUMBER`.
#[derive(Debug, Clone, PartialEq)]
pub struct PromGate {
    /// The gate as given.
    pub text: String,
    /// The PromQL query, template variables not yet filled in.
    pub query: String,
    /// How each sample is compared with `threshold`.
    pub op: Comparison,
    /// The number after the comparison.
    pub threshold: f64,
}

impl std::str::FromStr for PromGate {
    type Err = GateError;

    /// The comparison is the last ` OP NUMBER` of the text outside quotes,
    /// braces, brackets and parentheses, so a query may hold comparisons
    /// and label matchers of its own.
    fn from_str(text: &str) -> Result<Self, GateError> {
        let gate = text.trim();
        if gate.len() > MAX_GATE_BYTES {
            let mut cut = 60;
            while !gate.is_char_boundary(cut) {
                cut -= 1;
            }
            return Err(GateError::TooLong(gate[..cut].to_string()));
        }
        let Some((at, op, len)) = last_top_level_comparison(gate) else {
            return Err(GateError::NoComparison(gate.to_string()));
        };
        let query = gate[..at].trim();
        let number = gate[at + len..].trim();
        if number.is_empty() {
            return Err(GateError::NoComparison(gate.to_string()));
        }
        let threshold = number
            .parse::<f64>()
            .ok()
            .filter(|t| !t.is_nan())
            .ok_or_else(|| GateError::BadThreshold {
                gate: gate.to_string(),
                threshold: number.to_string(),
            })?;
        if query.is_empty() {
            return Err(GateError::EmptyQuery(gate.to_string()));
        }
        for name in variables(query) {
            if !VARIABLES.contains(&name.trim()) {
                return Err(GateError::UnknownVariable {
                    gate: gate.to_string(),
                    name: name.to_string(),
                });
            }
        }
        Ok(Self {
            text: gate.to_string(),
            query: query.to_string(),
            op,
            threshold,
        })
    }
}

impl fmt::Display for PromGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Names inside `{{ }}` in `query`.
fn variables(query: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    out
}

/// Byte offset, operator and operator length of the last comparison of
/// `text` at depth 0 (outside quotes and brackets of any kind).
fn last_top_level_comparison(text: &str) -> Option<(usize, Comparison, usize)> {
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut found = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' && q != b'`' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        let next = bytes.get(i + 1).copied();
        match b {
            b'"' | b'\'' | b'`' => quote = Some(b),
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth -= 1,
            // A comment runs to the end of its line.
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            _ if depth != 0 => {}
            b'<' | b'>' | b'=' | b'!' => {
                let op = match (b, next) {
                    (b'<', Some(b'=')) => Some((Comparison::Le, 2)),
                    (b'>', Some(b'=')) => Some((Comparison::Ge, 2)),
                    (b'=', Some(b'=')) => Some((Comparison::Eq, 2)),
                    (b'!', Some(b'=')) => Some((Comparison::Ne, 2)),
                    (b'<', _) => Some((Comparison::Lt, 1)),
                    (b'>', _) => Some((Comparison::Gt, 1)),
                    _ => None,
                };
                if let Some((op, len)) = op {
                    found = Some((i, op, len));
                    i += len;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// What a query's template variables stand for.
#[derive(Debug, Clone, Copy)]
pub struct GateContext<'a> {
    /// The nodes the gate looks at (those updated so far): `{{nodes}}`.
    pub nodes: &'a [String],
    /// The wave being read: `{{wave}}`.
    pub wave: u32,
    /// The version rolled out: `{{version}}`.
    pub version: u64,
}

/// A regular expression (RE2, as Prometheus reads them) matching exactly
/// `nodes`, escaped for a PromQL double-quoted string. No nodes: a
/// regular expression that matches nothing (not even the empty value).
pub fn nodes_regex(nodes: &[String]) -> String {
    let regex = if nodes.is_empty() {
        r"[^\x00-\x{10FFFF}]".to_string()
    } else {
        nodes
            .iter()
            .map(|n| regex_syntax::escape(n))
            .collect::<Vec<_>>()
            .join("|")
    };
    promql_string_escape(&regex)
}

/// `s` as the inside of a PromQL double-quoted string.
fn promql_string_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl PromGate {
    /// The query with its template variables filled in for `ctx`
    /// (`{{nodes}}` and `{{ nodes }}` alike).
    pub fn render(&self, ctx: &GateContext<'_>) -> String {
        let mut out = String::with_capacity(self.query.len());
        let mut rest = self.query.as_str();
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else { break };
            out.push_str(&rest[..start]);
            match after[..end].trim() {
                "nodes" => out.push_str(&nodes_regex(ctx.nodes)),
                "wave" => out.push_str(&ctx.wave.to_string()),
                "version" => out.push_str(&ctx.version.to_string()),
                // Refused when parsed; kept as written otherwise.
                _ => out.push_str(&rest[start..start + 2 + end + 2]),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// One reading of a gate.
#[derive(Debug, Clone, PartialEq)]
pub struct GateOutcome {
    /// Every sample satisfied the comparison.
    pub passed: bool,
    /// The deciding sample (the first that failed, else the closest to
    /// failing); None when there was none to read.
    pub value: Option<f64>,
    /// What was read, or why the gate failed, in one line.
    pub detail: String,
}

impl GateOutcome {
    fn failed(detail: String) -> Self {
        Self {
            passed: false,
            value: None,
            detail,
        }
    }
}

/// Reads gates from one Prometheus server.
#[derive(Clone)]
pub struct PromClient {
    /// `host:port` to connect to.
    authority: http::uri::Authority,
    /// Host name for TLS and the `Host` header.
    host: String,
    /// Path prefix (a Prometheus behind a reverse proxy at `/prometheus`).
    prefix: String,
    /// The URL as given, for messages.
    url: String,
    timeout: Duration,
    tls: Option<tokio_rustls::TlsConnector>,
}

/// Where a system keeps its PEM bundle of trusted CAs (Debian and
/// derivatives, Fedora and RHEL, openSUSE, Alpine); `SSL_CERT_FILE` wins.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

impl PromClient {
    /// A client for the Prometheus at `url` (`http://host:port` or
    /// `https://...`, optionally with a path prefix); every reading is
    /// bounded by `timeout`. https trusts the system's CA bundle.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, MasterError> {
        let bad = |why: &str| {
            MasterError::Invalid(format!(
                "Prometheus URL `{url}`: {why}; write for example http://127.0.0.1:9090"
            ))
        };
        let uri: http::Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(bad(&format!("scheme `{other}` is not http or https"))),
            None => return Err(bad("no scheme")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        if uri.query().is_some() {
            return Err(bad("a query string is not allowed"));
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let authority: http::uri::Authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
        .parse()
        .map_err(|_| bad("bad host or port"))?;
        if timeout.is_zero() {
            return Err(MasterError::Invalid(
                "the Prometheus timeout must be longer than zero".into(),
            ));
        }
        let tls = if https { Some(system_tls()?) } else { None };
        Ok(Self {
            authority,
            host,
            prefix: uri.path().trim_end_matches('/').to_string(),
            url: url.trim().trim_end_matches('/').to_string(),
            timeout,
            tls,
        })
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Reads `gate` for `ctx` with one instant query. Never errs: a gate
    /// that cannot be read fails, with a detail saying why.
    pub async fn read(&self, gate: &PromGate, ctx: &GateContext<'_>) -> GateOutcome {
        let query = gate.render(ctx);
        let answer = match tokio::time::timeout(self.timeout, self.query(&query)).await {
            Ok(Ok(a)) => a,
            Ok(Err(why)) => return GateOutcome::failed(why),
            Err(_) => {
                return GateOutcome::failed(format!(
                    "Prometheus at {} did not answer within {}",
                    self.url,
                    cdn_common::duration::short(self.timeout)
                ));
            }
        };
        judge(gate, &query, answer)
    }

    /// GET `/api/v1/query?query=...`, the body parsed.
    async fn query(&self, query: &str) -> Result<ApiAnswer, String> {
        let encoded =
            percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC);
        let path = format!("{}/api/v1/query?query={encoded}", self.prefix);
        let unreachable =
            |e: &dyn std::fmt::Display| format!("Prometheus at {} unreachable: {e}", self.url);
        let tcp = tokio::net::TcpStream::connect(self.authority.as_str())
            .await
            .map_err(|e| unreachable(&e))?;
        let _ = tcp.set_nodelay(true);
        let request = http::Request::get(path)
            .header(http::header::HOST, self.authority.as_str())
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("masterd/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = match &self.tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("Prometheus host `{}`: {e}", self.host))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| unreachable(&format!("TLS: {e}")))?;
                send(TokioIo::new(stream), request).await
            }
            None => send(TokioIo::new(tcp), request).await,
        }
        .map_err(|e| format!("Prometheus at {}: {e}", self.url))?;
        let (status, body) = response;
        let parsed: Result<ApiAnswer, _> = serde_json::from_slice(&body);
        match parsed {
            Ok(a) if a.status == "success" => Ok(a),
            Ok(a) => Err(format!(
                "Prometheus at {} refused the query (HTTP {status}, {}): {}",
                self.url,
                a.error_type.as_deref().unwrap_or("error"),
                a.error.as_deref().unwrap_or("no reason given")
            )),
            Err(_) => Err(format!(
                "Prometheus at {} answered HTTP {status} without an API answer{}",
                self.url,
                snippet(&body)
            )),
        }
    }
}

/// The system's trusted CAs, for https.
fn system_tls() -> Result<tokio_rustls::TlsConnector, MasterError> {
    let file = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(CA_BUNDLES.iter().map(std::path::PathBuf::from))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            MasterError::Invalid(format!(
                "https to Prometheus needs the system's CA bundle (one of {}, or SSL_CERT_FILE); none found",
                CA_BUNDLES.join(", ")
            ))
        })?;
    let pem = std::fs::read_to_string(&file).map_err(|e| {
        MasterError::Invalid(format!("cannot read CA bundle {}: {e}", file.display()))
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let certs = cdn_common::tls::pem_certs(&pem)
        .map_err(|e| MasterError::Invalid(format!("CA bundle {}: {e}", file.display())))?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(MasterError::Invalid(format!(
            "CA bundle {} holds no usable certificate",
            file.display()
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| MasterError::Internal(format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Sends `request` on a fresh HTTP/1.1 connection over `io`; the status
/// and at most [`MAX_ANSWER_BYTES`] of body.
async fn send<T>(io: T, request: http::Request<Empty<Bytes>>) -> Result<(u16, Bytes), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    // The connection is driven beside the request and dropped with it.
    let driver = async move {
        let _ = conn.await;
        std::future::pending::<()>().await
    };
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let limited = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES);
        let body = limited
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    tokio::select! {
        r = exchange => r,
        _ = driver => unreachable!("the driver never ends"),
    }
}

/// The start of a non-API body, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let t = text.trim();
    if t.is_empty() {
        return String::new();
    }
    let mut cut = t.len().min(120);
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(": {}", t[..cut].replace('\n', " "))
}

/// Prometheus' answer to a query (`/api/v1/query`).
#[derive(Debug, Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// One sample: its labels and value.
struct Sample {
    labels: String,
    value: f64,
}

/// A sample's value as Prometheus spells it: `[time, "1.5"]`.
fn sample_value(pair: &serde_json::Value) -> Option<f64> {
    let text = pair.get(1)?.as_str()?;
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// `{a="b", c="d"}` of a vector sample.
fn labels_text(metric: Option<&serde_json::Value>) -> String {
    let Some(map) = metric.and_then(|m| m.as_object()) else {
        return "{}".into();
    };
    let mut parts: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or_default()))
        .collect();
    parts.sort();
    format!("{{{}}}", parts.join(", "))
}

/// The outcome of `gate` given Prometheus' answer to `query`.
fn judge(gate: &PromGate, query: &str, answer: ApiAnswer) -> GateOutcome {
    let Some(data) = answer.data else {
        return GateOutcome::failed(format!("no data for `{query}` (an answer without data)"));
    };
    let samples: Vec<Sample> = match data.result_type.as_str() {
        "vector" => data
            .result
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|s| {
                        Some(Sample {
                            labels: labels_text(s.get("metric")),
                            value: sample_value(s.get("value")?)?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "scalar" => sample_value(&data.result)
            .map(|value| {
                vec![Sample {
                    labels: String::new(),
                    value,
                }]
            })
            .unwrap_or_default(),
        other => {
            return GateOutcome::failed(format!(
                "`{query}` returned a {other}; a gate needs an instant vector or a scalar"
            ));
        }
    };
    if samples.is_empty() {
        return GateOutcome::failed(format!("no data for `{query}`"));
    }
    let (op, threshold) = (gate.op, gate.threshold);
    let failing = samples
        .iter()
        .filter(|s| !op.holds(s.value, threshold))
        .count();
    let worst = samples
        .iter()
        .find(|s| !op.holds(s.value, threshold))
        .or_else(|| {
            samples.iter().min_by(|a, b| {
                op.margin(a.value, threshold)
                    .total_cmp(&op.margin(b.value, threshold))
            })
        })
        .expect("samples is not empty");
    let on = if worst.labels.is_empty() {
        String::new()
    } else {
        format!(" on {}", worst.labels)
    };
    let value = fmt_value(worst.value);
    let threshold_text = fmt_value(threshold);
    if failing == 0 {
        GateOutcome {
            passed: true,
            value: Some(worst.value),
            detail: format!(
                "{value}{on} {op} {threshold_text} (worst of {} series)",
                samples.len(),
            ),
        }
    } else {
        GateOutcome {
            passed: false,
            value: Some(worst.value),
            detail: format!(
                "{value}{on} is not {op} {threshold_text} ({failing} of {} series failing)",
                samples.len(),
            ),
        }
    }
}

/// A value as Prometheus writes it.
fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(text: &str) -> PromGate {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// `c`'s reading of `up < 1` for no nodes, where only the way to
    /// Prometheus matters.
    async fn read_up(c: &PromClient) -> GateOutcome {
        let ctx = GateContext {
            nodes: &[],
            wave: 0,
            version: 1,
        };
        c.read(&gate("up < 1"), &ctx).await
    }

    fn error(text: &str) -> String {
        text.parse::<PromGate>().unwrap_err().to_string()
    }

    #[test]
    fn the_last_top_level_comparison_is_the_gate() {
        let g = gate("sum(rate(http_errors_total[1m])) < 0.05");
        assert_eq!(g.query, "sum(rate(http_errors_total[1m]))");
        assert_eq!((g.op, g.threshold), (Comparison::Lt, 0.05));
        for (text, op) in [
            ("up <= 1", Comparison::Le),
            ("up>=1", Comparison::Ge),
            ("up == 1", Comparison::Eq),
            ("up != 0", Comparison::Ne),
            ("up > -1.5e3", Comparison::Gt),
        ] {
            assert_eq!(gate(text).op, op, "{text}");
        }
        // Comparisons and matchers inside the query are the query's.
        let g = gate(r#"max(x{a!="1",b=~"<|>"} > 3) by (pop) >= 2"#);
        assert_eq!(g.query, r#"max(x{a!="1",b=~"<|>"} > 3) by (pop)"#);
        assert_eq!((g.op, g.threshold), (Comparison::Ge, 2.0));
        // A query that filters with its own top-level comparison: the last.
        let g = gate("errors > 0 < 10");
        assert_eq!(
            (g.query.as_str(), g.op, g.threshold),
            ("errors > 0", Comparison::Lt, 10.0)
        );
        // Quotes with an escaped quote and an operator inside.
        let g = gate(r#"count(x{msg="say \"a > b\""}) == 0"#);
        assert_eq!(g.query, r#"count(x{msg="say \"a > b\""})"#);
        assert_eq!(g.threshold, 0.0);
        assert_eq!(g.text, r#"count(x{msg="say \"a > b\""}) == 0"#);
    }

    #[test]
    fn bad_gates_say_what_to_write() {
        assert_eq!(
            error("sum(rate(errors[1m]))"),
            "gate `sum(rate(errors[1m]))`: no comparison at the end; write QUERY < NUMBER"
        );
        assert_eq!(
            error("x{a=\"<\"}"),
            "gate `x{a=\"<\"}`: no comparison at the end; write QUERY < NUMBER"
        );
        assert_eq!(
            error("up <"),
            "gate `up <`: no comparison at the end; write QUERY < NUMBER"
        );
        assert_eq!(
            error("up < abc"),
            "gate `up < abc`: threshold `abc` is not a number"
        );
        assert_eq!(
            error("up < NaN"),
            "gate `up < NaN`: threshold `NaN` is not a number"
        );
        assert_eq!(
            error("a < b"),
            "gate `a < b`: threshold `b` is not a number"
        );
        assert_eq!(error(" < 3"), "gate `< 3`: empty query");
        assert_eq!(
            error(""),
            "gate ``: no comparison at the end; write QUERY < NUMBER"
        );
        assert_eq!(
            error("x{node=~\"{{node}}\"} < 1"),
            "gate `x{node=~\"{{node}}\"} < 1`: unknown template variable `{{node}}` (known: {{nodes}}, {{wave}}, {{version}})"
        );
        assert!(error(&format!("{} < 1", "x".repeat(5000))).contains("longer than"));
    }

    #[test]
    fn nodes_become_an_exact_escaped_alternation() {
        let g = gate(r#"max(errors{node=~"{{nodes}}", wave="{{ wave }}", v="{{version}}"}) < 1"#);
        let nodes = vec!["edge-1".to_string(), "edge.2".to_string()];
        let q = g.render(&GateContext {
            nodes: &nodes,
            wave: 2,
            version: 17,
        });
        assert_eq!(
            q,
            r#"max(errors{node=~"edge\\-1|edge\\.2", wave="2", v="17"})"#
        );
        // Hostile names: regex metacharacters, quotes, backslashes and a
        // newline stay literal inside the PromQL string, and the regular
        // expression Prometheus reads back matches each name exactly.
        let hostile = vec![
            r#"a"}) or vector(1) #"#.to_string(),
            r"b\|.*".to_string(),
            "c\nd'e".to_string(),
            "edge-1".to_string(),
        ];
        let quoted = nodes_regex(&hostile);
        assert!(!quoted.contains('\n'), "{quoted}");
        let mut unescaped_quote = false;
        let mut chars = quoted.chars();
        let mut regex = String::new();
        // PromQL's unquoting of a double-quoted string.
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => regex.push('\n'),
                    Some('"') => regex.push('"'),
                    Some('\\') => regex.push('\\'),
                    other => panic!("escape {other:?} PromQL refuses in {quoted}"),
                },
                '"' => unescaped_quote = true,
                c => regex.push(c),
            }
        }
        assert!(!unescaped_quote, "{quoted}");
        let re = regex::Regex::new(&format!("^(?:{regex})$")).unwrap();
        for name in &hostile {
            assert!(re.is_match(name), "{name:?} not matched by {regex}");
        }
        for other in ["a", "b", "bx", "edge-10", "edge-", "c", ".*", ""] {
            assert!(!re.is_match(other), "{other:?} matched by {regex}");
        }
        // No nodes: a class that matches nothing, not even "".
        assert_eq!(nodes_regex(&[]), r"[^\\x00-\\x{10FFFF}]");
        let none = regex::Regex::new(r"^(?:[^\x00-\x{10FFFF}])$").unwrap();
        assert!(!none.is_match("") && !none.is_match("edge-1"));
    }

    fn answer(json: &str) -> ApiAnswer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_sample_must_pass_and_the_worst_decides() {
        let g = gate("errors < 0.5");
        let vector = |values: &[&str]| {
            let result: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    format!(r#"{{"metric":{{"node":"n{i}"}},"value":[1700000000.1,"{v}"]}}"#)
                })
                .collect();
            answer(&format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
                result.join(",")
            ))
        };
        let o = judge(&g, "errors", vector(&["0.1", "0.3", "0.2"]));
        assert!(o.passed, "{o:?}");
        assert_eq!(o.value, Some(0.3));
        assert_eq!(o.detail, r#"0.3 on {node="n1"} < 0.5 (worst of 3 series)"#);
        let o = judge(&g, "errors", vector(&["0.1", "0.7", "0.9"]));
        assert!(!o.passed);
        assert_eq!(o.value, Some(0.7));
        assert_eq!(
            o.detail,
            r#"0.7 on {node="n1"} is not < 0.5 (2 of 3 series failing)"#
        );
        let o = judge(&g, "errors", vector(&["NaN"]));
        assert!(!o.passed && o.value.unwrap().is_nan(), "{o:?}");
        let o = judge(&g, "errors", vector(&[]));
        assert_eq!(o, GateOutcome::failed("no data for `errors`".into()));
        let scalar =
            answer(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"0.25"]}}"#);
        let o = judge(&g, "errors", scalar);
        assert!(o.passed);
        assert_eq!(o.detail, "0.25 < 0.5 (worst of 1 series)");
        let matrix = answer(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#);
        assert!(
            judge(&g, "errors", matrix)
                .detail
                .contains("returned a matrix")
        );
        let ne = gate("x != 0");
        let o = judge(&ne, "x", vector(&["3", "-1"]));
        assert!(o.passed);
        assert_eq!(o.value, Some(-1.0), "closest to zero decides");
    }

    #[test]
    fn urls_are_checked() {
        let t = Duration::from_secs(1);
        for bad in [
            "127.0.0.1:9090",
            "ftp://x:1",
            "http://",
            "http://h:1/?q=1",
            "not a url",
        ] {
            let e = PromClient::new(bad, t)
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(e.to_string().contains("Prometheus URL"), "{bad}: {e}");
        }
        let c = PromClient::new("http://127.0.0.1:9090/prom/", t).unwrap();
        assert_eq!(c.prefix, "/prom");
        assert_eq!(c.authority.as_str(), "127.0.0.1:9090");
        let c = PromClient::new("http://[::1]", t).unwrap();
        assert_eq!(c.authority.as_str(), "[::1]:80");
        assert!(PromClient::new("http://h:1", Duration::ZERO).is_err());
    }

    #[tokio::test]
    async fn a_closed_port_fails_the_gate_as_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c =
            PromClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
        let o = read_up(&c).await;
        assert!(!o.passed && o.value.is_none());
        assert!(o.detail.contains("unreachable"), "{}", o.detail);
    }

    #[tokio::test]
    async fn https_checks_the_servers_certificate_against_the_system_roots() {
        let t = Duration::from_secs(5);
        if let Err(e) = system_tls() {
            // No CA bundle on this system: https is refused up front.
            let refused = PromClient::new("https://localhost:1", t).err().unwrap();
            assert_eq!(refused.to_string(), e.to_string());
            assert!(e.to_string().contains("CA bundle"), "{e}");
            return;
        }
        // A server with a self-signed certificate no system trusts.
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                let _ = acceptor.accept(tcp).await;
            }
        });
        let c = PromClient::new(&format!("https://127.0.0.1:{port}"), t).unwrap();
        let o = read_up(&c).await;
        assert!(!o.passed && o.value.is_none(), "{o:?}");
        assert!(
            o.detail.contains("TLS") && o.detail.contains("certificate"),
            "{}",
            o.detail
        );
        server.abort();
    }
}
