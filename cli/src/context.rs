//! Where the master is and the one connection an invocation uses.

use std::path::PathBuf;
use std::time::Duration;

use cdn_proto::v1::admin_service_client::AdminServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::CliError;
use crate::error::describe_io;

/// Largest gRPC message cdnctl sends or accepts (a full-size config).
const MAX_MESSAGE_BYTES: usize = crate::commands::config::MAX_CONFIG_BYTES as usize + 64 * 1024;

/// Per-invocation state: the master's address, the time limit, and the
/// connection once it is made.
#[derive(Debug)]
pub struct Context {
    /// `host:port` of the master.
    pub master: String,
    /// Limit on connecting and on each call.
    pub timeout: Duration,
}

/// The user's cdnctl config file (`$XDG_CONFIG_HOME/cdnctl/config.yml`).
pub fn config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("cdnctl").join("config.yml"))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    master: Option<String>,
}

impl Context {
    /// Resolves the master address: flag/env (already merged by clap), then
    /// the config file, then the default.
    pub fn resolve(flag: Option<&str>, timeout: Duration) -> Result<Self, CliError> {
        let master = match flag {
            Some(m) => m.to_string(),
            None => match config_file() {
                Some(path) if path.exists() => {
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        CliError::Local(format!(
                            "{}: cannot read: {}",
                            path.display(),
                            describe_io(&e)
                        ))
                    })?;
                    let cfg: FileConfig = if text.trim().is_empty() {
                        FileConfig::default()
                    } else {
                        serde_yaml_ng::from_str(&text)
                            .map_err(|e| CliError::Local(format!("{}: {e}", path.display())))?
                    };
                    cfg.master
                        .unwrap_or_else(|| crate::DEFAULT_MASTER.to_string())
                }
                _ => crate::DEFAULT_MASTER.to_string(),
            },
        };
        let master = master.trim().to_string();
        if master.is_empty() || !master.contains(':') {
            return Err(CliError::Local(format!(
                "master address `{master}` must be host:port"
            )));
        }
        Ok(Self { master, timeout })
    }

    /// Connects to the master's AdminService.
    pub async fn admin(&self) -> Result<AdminServiceClient<Channel>, CliError> {
        let uri = if self.master.starts_with("http://") || self.master.starts_with("https://") {
            self.master.clone()
        } else {
            format!("http://{}", self.master)
        };
        let endpoint = Endpoint::from_shared(uri).map_err(|e| {
            CliError::Local(format!("master address `{}` is invalid: {e}", self.master))
        })?;
        let endpoint = endpoint
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .tcp_nodelay(true);
        let channel = match tokio::time::timeout(self.timeout, endpoint.connect()).await {
            Err(_) => {
                return Err(CliError::Unreachable {
                    addr: self.master.clone(),
                    reason: format!(
                        "no answer within {}",
                        humantime::format_duration(self.timeout)
                    ),
                });
            }
            Ok(Err(e)) => {
                return Err(CliError::Unreachable {
                    addr: self.master.clone(),
                    reason: transport_reason(&e),
                });
            }
            Ok(Ok(c)) => c,
        };
        Ok(AdminServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Maps a failed call to an error naming this master.
    pub fn call_error(&self, s: &tonic::Status) -> CliError {
        CliError::from_status(&self.master, s)
    }
}

fn transport_reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return describe_io(io);
        }
        last = err.to_string();
        cur = err.source();
    }
    last
}
