//! TLS pieces every binary needs: certificate fingerprints, join tokens,
//! private files, the client TLS settings, and fetching the master's CA
//! pinned by its fingerprint (how an agent trusts the right master from the
//! first byte of its first connection).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a TLS step failed, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Token(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("cannot reach master at {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("{0}")]
    Untrusted(String),
    #[error("{0}")]
    Pem(String),
}

/// sha256 of `data`, lowercase hex: config content hashes, certificate
/// fingerprints, token secret hashes.
pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// sha256 of a DER certificate, lowercase hex: what a join token pins.
pub fn fingerprint(der: &[u8]) -> String {
    sha256_hex(der)
}

/// sha256 of a token secret, as the master stores it.
pub fn secret_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// Every certificate in a PEM text, as DER.
pub fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| TlsError::Pem(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Pem("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

/// Fingerprint of the first certificate of a PEM text.
pub fn pem_fingerprint(pem: &str) -> Result<String, TlsError> {
    Ok(fingerprint(&pem_certs(pem)?[0]))
}

/// PEM text of one DER certificate.
pub fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Random lowercase alphanumeric text of `len` characters.
pub fn random_text(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A join token: `cdn1.<CA sha256>.<id>.<secret>`. The fingerprint lets the
/// agent check the master before sending it anything; the id names the token
/// in listings; only the secret's hash is stored on the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub ca_fingerprint: String,
    pub id: String,
    pub secret: String,
}

const TOKEN_PREFIX: &str = "cdn1";
/// Length of a token id.
pub const TOKEN_ID_LEN: usize = 8;
/// Length of a token secret.
pub const TOKEN_SECRET_LEN: usize = 32;

impl JoinToken {
    /// A fresh token for the CA of fingerprint `ca_fingerprint`.
    pub fn generate(ca_fingerprint: &str) -> Self {
        Self {
            ca_fingerprint: ca_fingerprint.to_string(),
            id: random_text(TOKEN_ID_LEN),
            secret: random_text(TOKEN_SECRET_LEN),
        }
    }
}

impl std::fmt::Display for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{TOKEN_PREFIX}.{}.{}.{}",
            self.ca_fingerprint, self.id, self.secret
        )
    }
}

impl std::str::FromStr for JoinToken {
    type Err = TlsError;
    fn from_str(s: &str) -> Result<Self, TlsError> {
        let bad = |why: &str| {
            TlsError::Token(format!(
                "join token is malformed ({why}); it looks like {TOKEN_PREFIX}.<64 hex digits>.<id>.<secret>, as `masterd token create` prints it"
            ))
        };
        let parts: Vec<&str> = s.trim().split('.').collect();
        let [prefix, fp, id, secret] = parts[..] else {
            return Err(bad("it has not four dot-separated parts"));
        };
        if prefix != TOKEN_PREFIX {
            return Err(bad(&format!("it does not start with `{TOKEN_PREFIX}.`")));
        }
        if fp.len() != 64 || !fp.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("the CA fingerprint is not 64 hex digits"));
        }
        let alnum = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric());
        if !alnum(id) || id.len() > 64 || !alnum(secret) || secret.len() > 128 {
            return Err(bad("the id or the secret is not alphanumeric"));
        }
        Ok(Self {
            ca_fingerprint: fp.to_ascii_lowercase(),
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }
}

/// Creates `dir` (and parents) readable by the owner only; an existing
/// directory is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// As [`create_private_dir`], and an existing `dir` is made owner-only too:
/// for directories that hold keys and the store.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    create_private_dir(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `data` to `path` with mode 0600, atomically (see
/// [`write_private_with`]), replacing what was there.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    write_private_with(path, true, |f| f.write_all(data))
        .map(|_| ())
        .map_err(|e| TlsError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// Writes a file with mode 0600 atomically: `fill` writes a new temporary
/// file of a random name beside `path` (never an existing file or a symlink
/// planted there), which is fsync'd and put in place — renamed over `path`
/// when `replace`, else linked, so that a name taken meanwhile fails with
/// `AlreadyExists` — and the directory is fsync'd. Returns what `fill`
/// returned and the file's size; the temporary file is removed on failure.
pub fn write_private_with<T>(
    path: &Path,
    replace: bool,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<T>,
) -> std::io::Result<(T, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", random_text(12)));
    let written: std::io::Result<(T, u64)> = (|| {
        // Readable too: a filler may check what it wrote before it counts.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let out = fill(&mut f)?;
        f.sync_all()?;
        let len = f.metadata()?.len();
        if replace {
            std::fs::rename(&tmp, path)?;
        } else {
            // A link fails if the name was taken meanwhile; rename would
            // silently replace it.
            std::fs::hard_link(&tmp, path)?;
            std::fs::remove_file(&tmp)?;
        }
        Ok((out, len))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let out = written?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(out)
}

/// A warning when `path` can be read by its group or others.
pub fn exposure_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} holds a private key but is readable by others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

/// Client TLS settings: trust `ca_pem`, present `identity` (certificate and
/// key PEM) when given, and check the master's certificate for `server_name`.
pub fn client_tls(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
    server_name: &str,
) -> ClientTlsConfig {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(server_name)
        .timeout(HANDSHAKE_TIMEOUT);
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    tls
}

/// Opens a gRPC channel to `addr` (`host:port`), over TLS when `tls` is
/// given. The error is one line naming the cause (refused, timed out,
/// certificate not trusted…).
pub async fn connect(
    addr: &str,
    tls: Option<ClientTlsConfig>,
    timeout: Duration,
) -> Result<tonic::transport::Channel, String> {
    connect_with(addr, tls, timeout, None).await
}

/// HTTP/2 keepalive of a client's connection: a PING every `interval`,
/// also while no call is open, and the connection dropped when one goes
/// unanswered for `timeout`. A call waiting on a peer that vanished (host
/// down, network cut, no TCP reset) then fails instead of hanging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub interval: Duration,
    pub timeout: Duration,
}

/// As [`connect`], with HTTP/2 `keepalive` when given.
pub async fn connect_with(
    addr: &str,
    tls: Option<ClientTlsConfig>,
    timeout: Duration,
    keepalive: Option<Keepalive>,
) -> Result<tonic::transport::Channel, String> {
    let bare = addr
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{bare}"))
        .map_err(|e| format!("address `{addr}` is invalid: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .max_frame_size(cdn_proto::limits::CLIENT_FRAME_BYTES);
    if let Some(ka) = keepalive {
        endpoint = endpoint
            .http2_keep_alive_interval(ka.interval)
            .keep_alive_timeout(ka.timeout)
            .keep_alive_while_idle(true);
    }
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| root_cause(&e))?;
    }
    match tokio::time::timeout(timeout, endpoint.connect()).await {
        Err(_) => Err(format!(
            "no answer within {}",
            crate::duration::short(timeout)
        )),
        Ok(Err(e)) => Err(root_cause(&e)),
        Ok(Ok(c)) => Ok(c),
    }
}

/// The innermost cause of an error, worded for a person.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            // A TLS failure travels as an io::Error wrapping rustls's.
            if let Some(inner) = io.get_ref() {
                return describe_tls(&inner.to_string());
            }
            return crate::describe_io(io);
        }
        last = err.to_string();
        cur = err.source();
    }
    describe_tls(&last)
}

/// Adds what to do to rustls's terse certificate errors.
fn describe_tls(msg: &str) -> String {
    if msg.contains("UnknownIssuer") || msg.contains("unknown issuer") {
        format!(
            "{msg}: the master's certificate is not signed by the CA in your credential (another master, or its CA was replaced)"
        )
    } else if msg.contains("NotValidForName") || msg.contains("not valid for name") {
        format!(
            "{msg}: dial the master by a name in its certificate, or add this one to tls.names in master.yml"
        )
    } else if msg.contains("corrupt message") || msg.contains("InvalidContentType") {
        format!("{msg}: the master does not speak TLS here (started with --insecure?)")
    } else {
        msg.to_string()
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed): the
/// name a master's certificate is checked against by default.
pub fn host_of(addr: &str) -> String {
    let addr = addr
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = match addr.rfind(':') {
        Some(i) if !addr[..i].ends_with(':') || addr.starts_with('[') => &addr[..i],
        _ => addr,
    };
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

/// Connects to `addr`, checks that the master's certificate chain holds the
/// CA of fingerprint `pin` and that the master's certificate is valid under
/// it for `server_name`, and returns that CA certificate as PEM. Nothing but
/// the TLS handshake is sent.
pub async fn fetch_pinned_ca(
    addr: &str,
    server_name: &str,
    pin: &str,
    timeout: Duration,
) -> Result<String, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCa {
        pin: pin.to_ascii_lowercase(),
        provider: Arc::clone(&provider),
        found: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Untrusted(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| TlsError::Untrusted(format!("`{server_name}` is not a valid server name")))?;
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| TlsError::Connect {
                addr: addr.to_string(),
                message: crate::describe_io(&e),
            })?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let mut tls = connector.connect(name, tcp).await.map_err(|e| {
            let inner = e
                .get_ref()
                .map(|i| i.to_string())
                .unwrap_or_else(|| e.to_string());
            TlsError::Untrusted(format!("TLS handshake with {addr} failed: {inner}"))
        })?;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
        Ok::<(), TlsError>(())
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| TlsError::Connect {
            addr: addr.to_string(),
            message: format!(
                "no TLS handshake within {}",
                crate::duration::short(timeout)
            ),
        })??;
    let der = verifier
        .found
        .lock()
        .ok()
        .and_then(|f| f.clone())
        .ok_or_else(|| TlsError::Untrusted("the master sent no certificate".into()))?;
    Ok(der_to_pem(&der))
}

/// Accepts a server whose chain contains the pinned CA and whose own
/// certificate that CA signed for the server name; remembers the CA.
#[derive(Debug)]
struct PinnedCa {
    pin: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
    found: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates
            .iter()
            .chain(std::iter::once(end_entity))
            .find(|c| fingerprint(c) == self.pin)
        else {
            return Err(rustls::Error::General(format!(
                "the master's CA is not the one the join token names (fingerprint {}…): wrong master, or a machine in the middle",
                &self.pin[..12.min(self.pin.len())]
            )));
        };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(format!("the pinned CA is unusable: {e}")))?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&self.provider),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verified =
            inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        if let Ok(mut f) = self.found.lock() {
            *f = Some(ca.to_vec());
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_say_why() {
        let t = JoinToken::generate(&"ab".repeat(32));
        let parsed: JoinToken = t.to_string().parse().unwrap();
        assert_eq!(parsed, t);
        for bad in ["", "cdn1.abc.id.secret", "xyz.a.b.c", "cdn1.x.y"] {
            let e = bad.parse::<JoinToken>().unwrap_err().to_string();
            assert!(e.contains("join token is malformed"), "{e}");
        }
    }

    #[test]
    fn host_of_handles_names_and_literals() {
        assert_eq!(host_of("127.0.0.1:50051"), "127.0.0.1");
        assert_eq!(host_of("master.example:1"), "master.example");
        assert_eq!(host_of("[::1]:50051"), "::1");
        assert_eq!(host_of("https://m:443"), "m");
    }

    #[test]
    fn private_files_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        write_private(&p, b"x").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(exposure_warning(&p).is_none());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(exposure_warning(&p).unwrap().contains("chmod 600"));
        // Rewriting replaces the file; no temporary file is left behind.
        write_private(&p, b"y").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
