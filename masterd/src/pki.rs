//! The master's private CA and the certificates it issues.
//!
//! `<data_dir>/pki/` holds `ca.crt` and `ca.key` (made on first start, kept)
//! and `server.crt`/`server.key`, made anew at every start for the names and
//! addresses the master answers on, so a changed `tls.names` needs no manual
//! step. Agents get client certificates from CSRs (their keys never leave
//! them); operators get a key and certificate in their credential file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdn_common::tls::{TlsError, fingerprint, write_private};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// Lifetime of the CA made on first start.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Lifetime of the server certificate (renewed at every start anyway).
const SERVER_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start this long before now, for clocks a little behind.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Why a PKI step failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("certificate request refused: {0}")]
    BadRequest(String),
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// What a certificate is for; written into its organisational unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Node,
    User,
}

impl Kind {
    fn unit(self) -> &'static str {
        match self {
            Kind::Node => "cdn-node",
            Kind::User => "cdn-user",
        }
    }
}

/// An issued client certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    /// sha256 of the certificate: how the master recognises it.
    pub fingerprint: String,
    pub not_after_ms: i64,
}

/// The CA and the server identity.
pub struct Pki {
    ca_pem: String,
    ca_fingerprint: String,
    issuer: Issuer<'static, KeyPair>,
    /// Server certificate followed by the CA, so a client holding only the
    /// CA's fingerprint can check the chain.
    server_chain_pem: String,
    server_key_pem: String,
}

fn gen_err(e: impl std::fmt::Display) -> PkiError {
    PkiError::Generate(e.to_string())
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| PkiError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
}

fn random_serial() -> SerialNumber {
    use rand::Rng;
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

impl Pki {
    /// Loads the CA from `dir`, creating it on first start (the bool says
    /// so), and makes a server certificate for `names` (DNS names or IP
    /// addresses).
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<(Self, bool), PkiError> {
        cdn_common::tls::ensure_private_dir(dir).map_err(|e| PkiError::File {
            path: dir.display().to_string(),
            message: format!("cannot create: {e}"),
        })?;
        let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let created = !ca_crt.exists() || !ca_key.exists();
        if created {
            let key = KeyPair::generate().map_err(gen_err)?;
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(
                DnType::CommonName,
                format!("cdn masterd CA {}", cdn_common::tls::random_text(6)),
            );
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.serial_number = Some(random_serial());
            validity(&mut params, CA_LIFETIME);
            let cert = params.self_signed(&key).map_err(gen_err)?;
            // Key first: a crash between the two leaves no CA without key.
            write_private(&ca_key, key.serialize_pem().as_bytes())?;
            write_private(&ca_crt, cert.pem().as_bytes())?;
        }
        let ca_pem = read(&ca_crt)?;
        let key = KeyPair::from_pem(&read(&ca_key)?).map_err(|e| PkiError::File {
            path: ca_key.display().to_string(),
            message: format!("not a usable private key: {e}"),
        })?;
        let ca_der = cdn_common::tls::pem_certs(&ca_pem)?.remove(0);
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, key).map_err(|e| PkiError::File {
            path: ca_crt.display().to_string(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
        let mut pki = Self {
            ca_fingerprint: fingerprint(&ca_der),
            ca_pem,
            issuer,
            server_chain_pem: String::new(),
            server_key_pem: String::new(),
        };
        pki.make_server_cert(dir, names)?;
        Ok((pki, created))
    }

    fn make_server_cert(&mut self, dir: &Path, names: &[String]) -> Result<(), PkiError> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "cdn masterd");
        params.distinguished_name = dn;
        for n in names {
            let san = match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => match n.clone().try_into() {
                    Ok(dns) => SanType::DnsName(dns),
                    Err(_) => continue,
                },
            };
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial());
        validity(&mut params, SERVER_LIFETIME);
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        self.server_chain_pem = format!("{}{}", cert.pem(), self.ca_pem);
        self.server_key_pem = key.serialize_pem();
        // Copies for the operator to look at: the master serves from memory
        // and makes them anew at every start, so a full disk does not stop
        // it from starting.
        for (name, pem) in [
            ("server.key", &self.server_key_pem),
            ("server.crt", &self.server_chain_pem),
        ] {
            if let Err(e) = write_private(&dir.join(name), pem.as_bytes()) {
                tracing::warn!(file = %dir.join(name).display(), error = %e, "cannot write the server certificate's copy; serving with the one in memory");
            }
        }
        Ok(())
    }

    /// PEM of the CA certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// sha256 of the CA certificate, as join tokens carry it.
    pub fn ca_fingerprint(&self) -> &str {
        &self.ca_fingerprint
    }

    /// Server certificate chain and key, PEM.
    pub fn server_identity(&self) -> (&str, &str) {
        (&self.server_chain_pem, &self.server_key_pem)
    }

    /// Signs a node certificate for `node_id` over the public key of
    /// `csr_pem`. Nothing else is taken from the request: the name, the
    /// usage and the lifetime are the master's.
    pub fn sign_node(
        &self,
        csr_pem: &str,
        node_id: &str,
        lifetime: Duration,
    ) -> Result<Issued, PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::BadRequest(format!("not a valid signed CSR ({e})")))?;
        let params = client_params(Kind::Node, node_id, lifetime);
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(gen_err)?;
        Ok(issued(&cert, &params))
    }

    /// A key and certificate for operator `name`; the key PEM is returned
    /// once and not kept.
    pub fn issue_user(&self, name: &str, lifetime: Duration) -> Result<(Issued, String), PkiError> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let params = client_params(Kind::User, name, lifetime);
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok((issued(&cert, &params), key.serialize_pem()))
    }
}

fn client_params(kind: Kind, name: &str, lifetime: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationalUnitName, kind.unit());
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(random_serial());
    validity(&mut params, lifetime);
    params
}

fn issued(cert: &rcgen::Certificate, params: &CertificateParams) -> Issued {
    Issued {
        cert_pem: cert.pem(),
        fingerprint: fingerprint(cert.der()),
        not_after_ms: (params.not_after.unix_timestamp_nanos() / 1_000_000) as i64,
    }
}

/// Names the generated server certificate covers: loopback, the host name,
/// every local interface address, the configured listen hosts, and
/// `tls.names`.
pub fn server_names(listen_hosts: &[String], extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = hostname::get() {
        names.push(h.to_string_lossy().into_owned());
    }
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(addr) = a.address else { continue };
            if let Some(v4) = addr.as_sockaddr_in() {
                names.push(v4.ip().to_string());
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                // Link-local addresses need a zone and are no use in a SAN.
                if v6.ip().segments()[0] & 0xffc0 != 0xfe80 {
                    names.push(v6.ip().to_string());
                }
            }
        }
    }
    names.extend(
        listen_hosts
            .iter()
            .filter(|h| !h.is_empty() && *h != "0.0.0.0" && *h != "::")
            .cloned(),
    );
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// Where the PKI lives inside the data directory.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("pki")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_kept_and_the_server_cert_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let (a, created) = Pki::load_or_create(dir.path(), &names).unwrap();
        assert!(created);
        let (b, created) = Pki::load_or_create(dir.path(), &names).unwrap();
        assert!(!created);
        assert_eq!(a.ca_fingerprint(), b.ca_fingerprint());
        assert_ne!(a.server_identity().0, b.server_identity().0);
        use std::os::unix::fs::PermissionsExt;
        for f in ["ca.key", "server.key"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }

    #[test]
    fn a_node_cert_takes_only_the_key_from_the_request() {
        let dir = tempfile::tempdir().unwrap();
        let (pki, _) = Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut asked = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        asked.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let csr = asked.serialize_request(&key).unwrap().pem().unwrap();
        let issued = pki
            .sign_node(&csr, "agent-1", Duration::from_secs(60))
            .unwrap();
        let der = cdn_common::tls::pem_certs(&issued.cert_pem)
            .unwrap()
            .remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert.subject_alternative_name().unwrap().is_none());
        assert!(cert.basic_constraints().unwrap().is_none());
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "agent-1");
        assert!(
            pki.sign_node("garbage", "agent-1", Duration::from_secs(60))
                .is_err()
        );
    }
}
