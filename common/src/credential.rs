//! An operator credential: the file `masterd` writes for `cdnctl` (its own
//! `admin.credential` on first start, one per `masterd user add`). It holds
//! where the master is, the CA to check it with, and the user's certificate
//! and private key, so it is written with mode 0600.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::tls::{TlsError, exposure_warning, write_private};

/// A cdnctl credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// User name the certificate was issued to.
    pub user: String,
    /// Role at issue time (the master's record decides).
    pub role: String,
    /// `host:port` of the master's operator API, or several separated by
    /// commas (active/standby masters, tried in order; see [`masters`]).
    pub master: String,
    /// Name the master's certificate is checked against (default: the host
    /// of `master`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// PEM of the master's CA.
    pub ca: String,
    /// PEM of the user's certificate.
    pub cert: String,
    /// PEM of the user's private key.
    pub key: String,
}

impl Credential {
    /// Reads a credential file; the second value is a warning when the file
    /// is readable by others.
    pub fn load(path: &Path) -> Result<(Self, Option<String>), TlsError> {
        let file_err = |message: String| TlsError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let cred = Self::parse(&text).map_err(file_err)?;
        Ok((cred, exposure_warning(path)))
    }

    /// Reads a credential from the text of its file; the error never
    /// echoes the text (a wrong file may hold a secret).
    pub fn parse(text: &str) -> Result<Self, String> {
        crate::yaml::from_str(text)
            .map_err(|e| format!("not a cdnctl credential: {}", unquoted(&e.to_string())))
    }

    /// Writes the credential with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), TlsError> {
        let body = crate::yaml::to_string(self).map_err(|message| TlsError::File {
            path: path.display().to_string(),
            message,
        })?;
        let text = format!(
            "# cdnctl credential of user `{}` (role {}) for the master at {}.\n# It holds a private key: keep it 0600 and never share it.\n{body}",
            self.user, self.role, self.master
        );
        write_private(path, text.as_bytes())
    }

    /// The name to check the master's certificate against: `server_name`,
    /// else the host of the first master address.
    pub fn server_name(&self) -> String {
        self.server_name.clone().unwrap_or_else(|| {
            crate::tls::host_of(masters(&self.master).first().map_or("", String::as_str))
        })
    }
}

/// The addresses of a master field: one `host:port`, or several separated
/// by commas (`a:50052,b:50052`), in order, blanks dropped.
pub fn masters(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// `message` without what it quotes from the file: everything from its
/// first quote (backtick or double quote) to the last of the same kind, as
/// the YAML reader's messages quote one key or value and their own wording
/// has no quotes (`unknown field `…`, expected one of user, …`). A quote
/// inside the key cannot end the cut early. A wrong file may hold a
/// secret.
fn unquoted(message: &str) -> String {
    let Some(first) = message.find(['`', '"']) else {
        return message.to_string();
    };
    let q = &message[first..first + 1];
    match message.rfind(q) {
        Some(last) if last > first => format!("{}{q}…{}", &message[..first], &message[last..]),
        _ => format!("{}{q}…{q}", &message[..first]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_field_holds_one_address_or_several() {
        assert_eq!(masters("m1:50052"), ["m1:50052"]);
        assert_eq!(masters(" m1:1, m2:2 ,,"), ["m1:1", "m2:2"]);
        assert!(masters("").is_empty());
        let cred = Credential {
            user: "u".into(),
            role: "admin".into(),
            master: "m1.example:1,m2.example:2".into(),
            server_name: None,
            ca: String::new(),
            cert: String::new(),
            key: String::new(),
        };
        assert_eq!(cred.server_name(), "m1.example");
    }

    #[test]
    fn an_error_never_echoes_what_the_file_holds() {
        // Found by fuzzing: a one-line file (a join token given as a
        // credential) came back inside `invalid type: string "…"`.
        for text in [
            "cdn0.aabcbababababababa\tuser: ?\ta",
            "cdn0.s3cr3t-t0ken-value-1234567890",
            "user: [\"s3cr3t-t0ken-value-1234567890\"]",
            "- s3cr3t-t0ken-value-1234567890",
            "cdn1aa\tbaba!babab.bab`abababababAbabbaba!bababnbab\tbbakm: x",
            "cdn1aa\tbaba!babab.bab`abababababAbabbaba!bababnbababababababababababababaa\tbbakmbabaabaa\tbaba!babaababababaa\tbaba!baBakbababa!babbakmbabaabaab`abababababAbabbaba\tbaba!burabakbababmabaa\tba====ba!babakbababmbab.a:\n",
            "\"s3cr3t`t0ken\\\"value-1234567890\": 1",
        ] {
            let e = Credential::parse(text).unwrap_err();
            for secret in text.split_whitespace().filter(|w| w.len() >= 16) {
                assert!(!e.contains(secret), "{text:?}: {e}");
            }
            assert!(e.starts_with("not a cdnctl credential: "), "{e}");
        }
    }
}
