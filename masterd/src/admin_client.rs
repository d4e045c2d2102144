//! `masterd token|user|node|backup …`: management commands that call the
//! running master's AdminService with the admin credential from the data
//! directory (the store is held by the running master, so they never open
//! it; `backup --offline` and `restore` do, in [`crate::offline`]).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdn_common::credential::Credential;
use cdn_proto::v1::admin_service_client::AdminServiceClient;
use cdn_proto::v1::{
    AddUserRequest, AllowNodeRequest, BackupRequest, CreateTokenRequest, ListTokensRequest,
    ListUsersRequest, RemoveUserRequest, RevokeNodeRequest, RevokeTokenRequest,
};
use tonic::transport::Channel;

use crate::cli::{Command, NodeCommand, TokenCommand, UserCommand};

/// Limit on connecting and on each call.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a management command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Credential(String),
    #[error("cannot reach the master at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("{}", .0.message())]
    Call(tonic::Status),
    #[error("{0}")]
    Local(String),
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Call(s)
    }
}

async fn connect(
    credential: &Path,
    master: Option<&str>,
) -> Result<(AdminServiceClient<Channel>, Credential), ClientError> {
    let (cred, warning) = Credential::load(credential).map_err(|e| {
        ClientError::Credential(format!(
            "{e} (the management commands use the admin credential the master wrote on first start; pass --data-dir or --credential)"
        ))
    })?;
    if let Some(w) = warning {
        eprintln!("masterd: warning: {w}");
    }
    let addr = master.unwrap_or(&cred.master).to_string();
    let tls =
        cdn_common::tls::client_tls(&cred.ca, Some((&cred.cert, &cred.key)), &cred.server_name());
    let channel = cdn_common::tls::connect(&addr, Some(tls), CALL_TIMEOUT)
        .await
        .map_err(|reason| ClientError::Unreachable {
            addr: addr.clone(),
            reason,
        })?;
    Ok((AdminServiceClient::new(channel), cred))
}

fn when(ms: i64) -> String {
    if ms == 0 {
        "never".into()
    } else {
        crate::error::fmt_ms(ms)
    }
}

/// Runs one management command.
pub async fn run(
    cmd: Command,
    credential: PathBuf,
    master: Option<String>,
) -> Result<(), ClientError> {
    let (mut client, cred) = connect(&credential, master.as_deref()).await?;
    match cmd {
        Command::Token(TokenCommand::Create {
            ttl,
            uses,
            description,
        }) => {
            let r = client
                .create_token(CreateTokenRequest {
                    ttl_ms: ttl.map_or(0, |t| t.as_millis() as u64),
                    max_uses: uses.unwrap_or(0),
                    description,
                })
                .await?
                .into_inner();
            println!("{}", r.token);
            if let Some(i) = r.info {
                eprintln!(
                    "token {} made: expires {}, uses {}. Agents join with `master.join_token` in agent.yml (or --join-token).",
                    i.id,
                    when(i.expires_ms),
                    if i.max_uses == 0 {
                        "unlimited".into()
                    } else {
                        i.max_uses.to_string()
                    }
                );
            }
        }
        Command::Token(TokenCommand::List) => {
            let r = client.list_tokens(ListTokensRequest {}).await?.into_inner();
            println!(
                "{:<10} {:<8} {:<9} {:<21} {:<10} DESCRIPTION",
                "ID", "STATE", "USED", "EXPIRES", "BY"
            );
            for t in r.tokens {
                let state = if t.revoked {
                    "revoked"
                } else if t.expires_ms != 0 && t.expires_ms <= cdn_common::unix_millis_now() {
                    "expired"
                } else if t.max_uses != 0 && t.used >= t.max_uses {
                    "used-up"
                } else {
                    "valid"
                };
                let used = if t.max_uses == 0 {
                    format!("{}/-", t.used)
                } else {
                    format!("{}/{}", t.used, t.max_uses)
                };
                println!(
                    "{:<10} {:<8} {:<9} {:<21} {:<10} {}",
                    t.id,
                    state,
                    used,
                    when(t.expires_ms),
                    t.created_by,
                    t.description
                );
            }
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            client
                .revoke_token(RevokeTokenRequest { id: id.clone() })
                .await?;
            println!("token {id} revoked");
        }
        Command::User(UserCommand::Add { name, role, out }) => {
            let out = out.unwrap_or_else(|| PathBuf::from(format!("{name}.credential")));
            if out.exists() {
                return Err(ClientError::Local(format!(
                    "{} already exists; choose another --out",
                    out.display()
                )));
            }
            let r = client
                .add_user(AddUserRequest {
                    name: name.clone(),
                    role: role.clone(),
                })
                .await?
                .into_inner();
            let new = Credential {
                user: name.clone(),
                role: role.clone(),
                master: master.unwrap_or(cred.master),
                server_name: cred.server_name,
                ca: r.ca_pem,
                cert: r.cert_pem,
                key: r.key_pem,
            };
            new.save(&out)
                .map_err(|e| ClientError::Local(e.to_string()))?;
            println!(
                "user {name} ({role}) added; credential written to {} (0600). Hand it over privately; they run `cdnctl context add NAME --credential FILE`.",
                out.display()
            );
        }
        Command::User(UserCommand::List) => {
            let r = client.list_users(ListUsersRequest {}).await?.into_inner();
            println!(
                "{:<20} {:<9} {:<21} {:<12} FINGERPRINT",
                "NAME", "ROLE", "EXPIRES", "BY"
            );
            for u in r.users {
                println!(
                    "{:<20} {:<9} {:<21} {:<12} {}",
                    u.name,
                    u.role,
                    when(u.expires_ms),
                    u.created_by,
                    &u.fingerprint[..16.min(u.fingerprint.len())]
                );
            }
        }
        Command::User(UserCommand::Remove { name }) => {
            let r = client
                .remove_user(RemoveUserRequest { name: name.clone() })
                .await?
                .into_inner();
            println!(
                "user {name} removed ({} credential(s) revoked)",
                r.revoked_certs
            );
        }
        Command::Node(NodeCommand::Allow { name }) => {
            client
                .allow_node(AllowNodeRequest {
                    node_id: name.clone(),
                })
                .await?;
            println!("node {name} may enrol again (with a join token)");
        }
        Command::Backup {
            file,
            offline: false,
            force,
        } => {
            // Before asking: a large store is a long wait to be refused.
            if !force && file.symlink_metadata().is_ok() {
                return Err(ClientError::Local(
                    crate::backup::BackupError::Exists {
                        file: file.display().to_string(),
                    }
                    .to_string(),
                ));
            }
            let mut stream = client.backup(BackupRequest {}).await?.into_inner();
            // Written to disk as it arrives (a backup with recordings can
            // be larger than memory), checked, then put in place.
            let (tx, mut rx) = tokio::sync::mpsc::channel(4);
            let path = file.clone();
            let writer = tokio::task::spawn_blocking(move || {
                let pieces = std::iter::from_fn(|| rx.blocking_recv());
                crate::backup::receive_atomically(&path, force, pieces)
            });
            let received = async {
                while let Some(chunk) = stream.message().await? {
                    if tx.send(chunk.data).await.is_err() {
                        break;
                    }
                }
                Ok::<(), ClientError>(())
            }
            .await;
            drop(tx);
            let written = writer
                .await
                .map_err(|e| ClientError::Local(format!("backup task failed: {e}")));
            received?;
            let (checked, bytes) = written?.map_err(|e| ClientError::Local(e.to_string()))?;
            println!(
                "{}",
                crate::backup::report("wrote", &file, &checked.header, checked.recordings, bytes)
            );
        }
        Command::Backup { offline: true, .. } | Command::Restore { .. } => {
            return Err(ClientError::Local(
                "this command opens the store itself; it does not call the master".into(),
            ));
        }
        Command::Node(NodeCommand::Revoke { name }) => {
            let r = client
                .revoke_node(RevokeNodeRequest {
                    node_id: name.clone(),
                })
                .await?
                .into_inner();
            println!(
                "node {name}: certificate revoked{}",
                if r.was_connected {
                    "; its connection was cut"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}
