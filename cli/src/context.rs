//! Which master, with which credential, and the one connection an
//! invocation uses.
//!
//! The config file (`$XDG_CONFIG_HOME/cdnctl/config.yml`, or
//! `$CDNCTL_CONFIG`) holds named contexts, each a master address with the
//! CA, certificate and key of a credential `masterd` issued, and the name of
//! the current one. It holds private keys, so it is written 0600 and a
//! warning is printed when others can read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cdn_common::credential::Credential;
use cdn_proto::v1::admin_service_client::AdminServiceClient;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, ClientTlsConfig};

use crate::CliError;
use cdn_proto::limits::MAX_MESSAGE_BYTES;

/// Per-invocation state: where the master is, how to talk to it, the time
/// limit.
#[derive(Debug, Clone)]
pub struct Context {
    /// `host:port` of the master.
    pub master: String,
    /// Limit on connecting and on each call.
    pub timeout: Duration,
    /// TLS settings with the user's certificate; None = plaintext
    /// (`--insecure`).
    tls: Option<ClientTlsConfig>,
    /// The credential's user name, when known.
    pub user: Option<String>,
}

/// One named master in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextEntry {
    pub master: String,
    /// Plaintext to a master started with --insecure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cert: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

impl ContextEntry {
    /// A context from a credential file's content.
    pub fn from_credential(c: Credential) -> Self {
        Self {
            master: c.master,
            insecure: false,
            server_name: c.server_name,
            user: c.user,
            role: c.role,
            ca: c.ca,
            cert: c.cert,
            key: c.key,
        }
    }
}

/// The cdnctl config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, ContextEntry>,
    /// Older files: a bare default master address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
}

/// Path of the config file: `$CDNCTL_CONFIG`, else
/// `$XDG_CONFIG_HOME/cdnctl/config.yml`.
pub fn config_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CDNCTL_CONFIG") {
        return Some(PathBuf::from(p));
    }
    dirs::config_dir().map(|d| d.join("cdnctl").join("config.yml"))
}

impl FileConfig {
    /// Reads the config file (empty when it does not exist).
    pub fn load() -> Result<(Self, Option<PathBuf>), CliError> {
        let Some(path) = config_file() else {
            return Ok((Self::default(), None));
        };
        if !path.exists() {
            return Ok((Self::default(), Some(path)));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CliError::Local(format!(
                "{}: cannot read: {}",
                path.display(),
                crate::error::describe_io(&e)
            ))
        })?;
        let cfg = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_yaml_ng::from_str(&text)
                .map_err(|e| CliError::Local(format!("{}: {e}", path.display())))?
        };
        if !cfg.contexts.is_empty()
            && let Some(w) = cdn_common::tls::exposure_warning(&path)
        {
            crate::output::print_diagnostic(&format!("cdnctl: warning: {w}"));
        }
        Ok((cfg, Some(path)))
    }

    /// Writes the config file with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        if let Some(dir) = path.parent() {
            cdn_common::tls::create_private_dir(dir)
                .map_err(|e| CliError::Local(format!("{}: cannot create: {e}", dir.display())))?;
        }
        let text = serde_yaml_ng::to_string(self)
            .map_err(|e| CliError::Local(format!("cannot render the config: {e}")))?;
        let text = format!("# cdnctl contexts; holds private keys: keep it 0600.\n{text}");
        cdn_common::tls::write_private(path, text.as_bytes())
            .map_err(|e| CliError::Local(e.to_string()))
    }
}

/// Where the master is and how to reach it, from the global flags.
#[derive(Debug, Default)]
pub struct Selection<'a> {
    pub master: Option<&'a str>,
    pub credential: Option<&'a Path>,
    pub context: Option<&'a str>,
    pub insecure: bool,
}

impl Context {
    /// Resolves master and credential: `--credential`, else `--context`,
    /// else the current context; `--master` overrides the address of any of
    /// them; `--insecure` talks plaintext.
    pub fn resolve(sel: Selection<'_>, timeout: Duration) -> Result<Self, CliError> {
        let (file, path) = FileConfig::load()?;
        let entry = if let Some(p) = sel.credential {
            let (cred, warning) =
                Credential::load(p).map_err(|e| CliError::Local(e.to_string()))?;
            if let Some(w) = warning {
                crate::output::print_diagnostic(&format!("cdnctl: warning: {w}"));
            }
            Some(ContextEntry::from_credential(cred))
        } else {
            let name = sel
                .context
                .map(str::to_string)
                .or_else(|| file.current_context.clone());
            match name {
                None => None,
                Some(n) => Some(file.contexts.get(&n).cloned().ok_or_else(|| {
                    CliError::Local(format!(
                        "no context `{n}` in {} (`cdnctl context list` shows them)",
                        path.as_deref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| "the config file".into())
                    ))
                })?),
            }
        };
        let master = sel
            .master
            .map(str::to_string)
            .or_else(|| entry.as_ref().map(|e| e.master.clone()))
            .or(file.master.clone())
            .unwrap_or_else(|| crate::DEFAULT_MASTER.to_string());
        let master = master.trim().to_string();
        if master.is_empty() || !master.contains(':') {
            return Err(CliError::Local(format!(
                "master address `{master}` must be host:port"
            )));
        }
        let insecure = sel.insecure || entry.as_ref().is_some_and(|e| e.insecure);
        let (tls, user) = if insecure {
            (None, entry.map(|e| e.user).filter(|u| !u.is_empty()))
        } else {
            let Some(e) = entry.filter(|e| !e.cert.is_empty()) else {
                return Err(CliError::Local(format!(
                    "no credential for the master at {master}: run `cdnctl context add NAME --credential FILE` with the admin.credential masterd wrote in its data directory (or a file from `masterd user add`), or pass --credential FILE; --insecure talks to a master started with --insecure"
                )));
            };
            let server_name = e
                .server_name
                .clone()
                .unwrap_or_else(|| cdn_common::tls::host_of(&master));
            let tls = cdn_common::tls::client_tls(&e.ca, Some((&e.cert, &e.key)), &server_name);
            (Some(tls), Some(e.user))
        };
        Ok(Self {
            master,
            timeout,
            tls,
            user,
        })
    }

    /// Connects to the master's AdminService.
    pub async fn admin(&self) -> Result<AdminServiceClient<Channel>, CliError> {
        let channel = cdn_common::tls::connect(&self.master, self.tls.clone(), self.timeout)
            .await
            .map_err(|reason| CliError::Unreachable {
                addr: self.master.clone(),
                reason,
            })?;
        Ok(AdminServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Maps a failed call to an error naming this master.
    pub fn call_error(&self, s: &tonic::Status) -> CliError {
        let msg = s.message();
        if self.tls.is_none()
            && (msg.contains("protocol error")
                || msg.contains("http2 error")
                || msg.contains("transport error"))
        {
            return CliError::Unreachable {
                addr: self.master.clone(),
                reason: "no plaintext gRPC answer; the master probably speaks TLS here: drop --insecure and use a credential (`cdnctl context add`)".into(),
            };
        }
        CliError::from_status(&self.master, s)
    }

    /// The name sent as author where the master does not know the caller
    /// (an insecure master): the credential's user, else the local user.
    pub fn author(&self) -> String {
        self.user.clone().unwrap_or_else(crate::local_user)
    }
}
