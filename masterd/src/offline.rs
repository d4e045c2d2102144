//! `masterd backup --offline` and `masterd restore`: the management
//! commands that open the configured store themselves instead of calling a
//! running master, and [`open_backend`], how they open it.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;

use crate::backup::{self, BackupError, Origin, Target};
use crate::cli::Command;
use crate::config::{BackendKind, MasterConfig};
use crate::store::{Backend, DB_FILE, EmbeddedStore, StoreError};

/// Why an offline command failed.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The embedded store is held by a running master.
    #[error("the data directory {dir} is in use by a running masterd; {hint}")]
    InUse { dir: String, hint: &'static str },
    #[error("there is no master store in {dir} (no {DB_FILE}); check -c and --data-dir")]
    NoStore { dir: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Store(StoreError),
    #[error(transparent)]
    Backup(#[from] BackupError),
}

impl From<StoreError> for OfflineError {
    fn from(e: StoreError) -> Self {
        OfflineError::Store(e)
    }
}

/// The store `config` names, opened by this process (not through a
/// master). An embedded store is created if missing, and is refused
/// ([`StoreError::InUse`]) while a master holds it.
pub async fn open_backend(config: &MasterConfig) -> Result<Arc<dyn Backend>, OfflineError> {
    match config.store.backend {
        BackendKind::Embedded => Ok(Arc::new(EmbeddedStore::open(&config.data_dir)?)),
        // etcd is shared and consistent: reading it while masters run is
        // fine (one revision for the whole backup); a restore checks that
        // no master leads and the prefix is empty.
        BackendKind::Etcd => {
            let etcd = &config.store.etcd;
            let client = Arc::new(crate::etcd::EtcdClient::new(etcd)?);
            Ok(Arc::new(
                crate::store::EtcdStore::open(client, &etcd.prefix).await?,
            ))
        }
    }
}

/// [`open_backend`], with what to do instead when a master holds the store.
async fn open(config: &MasterConfig, hint: &'static str) -> Result<Arc<dyn Backend>, OfflineError> {
    open_backend(config).await.map_err(|e| match e {
        OfflineError::Store(StoreError::InUse { dir }) => OfflineError::InUse { dir, hint },
        other => other,
    })
}

/// Where `config`'s store is, for people.
fn describe_store(config: &MasterConfig) -> String {
    match config.store.backend {
        BackendKind::Embedded => format!("the embedded store in {}", config.data_dir.display()),
        BackendKind::Etcd => format!(
            "etcd {} under {}",
            config.store.etcd.endpoints.join(","),
            config.store.etcd.prefix
        ),
    }
}

/// Runs `backup --offline` or `restore` against `config`'s store.
pub async fn run(cmd: Command, config: &MasterConfig) -> Result<(), OfflineError> {
    match cmd {
        Command::Backup {
            file,
            offline: true,
            force,
        } => backup(config, file, force).await,
        Command::Restore { file } => restore(config, file).await,
        _ => Err(OfflineError::Unsupported(
            "this command calls the running master; it does not open the store".into(),
        )),
    }
}

async fn backup(config: &MasterConfig, file: PathBuf, force: bool) -> Result<(), OfflineError> {
    // Opening an embedded store makes one: never back up an empty store
    // made by mistake in the wrong directory.
    if config.store.backend == BackendKind::Embedded && !config.data_dir.join(DB_FILE).exists() {
        return Err(OfflineError::NoStore {
            dir: config.data_dir.display().to_string(),
        });
    }
    if !force && file.symlink_metadata().is_ok() {
        return Err(BackupError::Exists {
            file: file.display().to_string(),
        }
        .into());
    }
    let backend = open(
        config,
        "back it up through that master instead: `masterd backup FILE` (without --offline)",
    )
    .await?;
    let entries = backend.export().await?;
    let origin = Origin::offline(config.store.backend);
    let created_ms = cdn_common::unix_millis_now();
    let recordings_dir = crate::recording::dir_in(&config.data_dir);
    let written = blocking(move || {
        let recs = backup::recordings::list(&recordings_dir).map_err(|e| BackupError::Io {
            file: recordings_dir.display().to_string(),
            message: cdn_common::describe_io(&e),
        })?;
        backup::write_atomically(
            Target::File {
                path: &file,
                replace: force,
            },
            &entries,
            &recs,
            &origin,
            created_ms,
        )
    })
    .await?;
    println!(
        "{}",
        backup::report(
            "wrote",
            &written.path,
            &written.header,
            written.recordings,
            written.bytes
        )
    );
    Ok(())
}

async fn restore(config: &MasterConfig, file: PathBuf) -> Result<(), OfflineError> {
    // The whole file is checked before the store is opened (or made); its
    // recordings are written aside as it is read (restore never replaces
    // one this master has) and put in place once the store is restored.
    let path = file.clone();
    let recordings_dir = crate::recording::dir_in(&config.data_dir);
    let (checked, staged) = blocking(move || {
        let f = std::fs::File::open(&path).map_err(|e| BackupError::Io {
            file: path.display().to_string(),
            message: cdn_common::describe_io(&e),
        })?;
        let mut staging = backup::recordings::Staging::new(recordings_dir);
        let checked = backup::decode_with(f, &path.display().to_string(), &mut |n, o, d| {
            staging.write(n, o, d)
        })?;
        Ok((checked, staging))
    })
    .await?;
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let backend = open(
        config,
        "stop it first: restore writes only into an empty store that no master runs on",
    )
    .await?;
    let header = checked.header;
    backend.import(checked.entries).await?;
    let recorded = blocking(move || {
        staged.commit().map_err(|e| BackupError::Io {
            file: "the restored recordings".into(),
            message: cdn_common::describe_io(&e),
        })
    })
    .await?;
    println!(
        "{}",
        backup::report("restored", &file, &header, recorded, bytes)
    );
    println!(
        "into {}. Start masterd on it: agents reconnect with their certificates and the credentials of the backed-up master keep working (a restored embedded master also writes a new admin.credential on its first start).",
        describe_store(config)
    );
    Ok(())
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, OfflineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackupError::Task(e.to_string()))?
        .map_err(OfflineError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(dir: &Path) -> MasterConfig {
        MasterConfig {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn an_offline_backup_restores_into_an_empty_store_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        let file = tmp.path().join("b.cdnbak");
        let backup_cmd = |force| Command::Backup {
            file: file.clone(),
            offline: true,
            force,
        };
        let e = run(backup_cmd(false), &config(&from)).await.unwrap_err();
        assert!(matches!(e, OfflineError::NoStore { .. }), "{e}");
        assert!(!from.exists(), "no store made by a backup");

        let held = EmbeddedStore::open(&from).unwrap();
        held.commit(vec![crate::store::Write::Node(crate::store::NodeRecord {
            name: "agent-1".into(),
            ..Default::default()
        })])
        .await
        .unwrap();
        let e = run(backup_cmd(false), &config(&from))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("in use") && e.contains("without --offline"),
            "{e}"
        );
        drop(held);
        run(backup_cmd(false), &config(&from)).await.unwrap();
        let e = run(backup_cmd(false), &config(&from)).await.unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        run(backup_cmd(true), &config(&from)).await.unwrap();

        let restore = || Command::Restore { file: file.clone() };
        run(restore(), &config(&to)).await.unwrap();
        let e = run(restore(), &config(&to)).await.unwrap_err();
        assert!(
            matches!(e, OfflineError::Store(StoreError::NotEmpty(_))),
            "{e}"
        );

        std::fs::write(&file, b"garbage").unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        let e = run(restore(), &config(&elsewhere)).await.unwrap_err();
        assert!(
            matches!(e, OfflineError::Backup(BackupError::Invalid { .. })),
            "{e}"
        );
        assert!(!elsewhere.exists(), "a bad file makes no store");
    }
}
