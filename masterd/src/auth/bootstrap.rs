//! What a master writes into its data directory so a new user can start:
//! the admin credential for cdnctl and, on first start, a join token for
//! agents (both 0600).

use std::path::{Path, PathBuf};

use cdn_common::credential::Credential;

use super::credentials::Credentials;
use crate::error::MasterError;
use crate::role::Role;

/// Name of the operator credential made on first start.
pub const ADMIN_CREDENTIAL: &str = "admin.credential";
/// Name of the file holding the join token made on first start.
pub const JOIN_TOKEN_FILE: &str = "join-token";
/// User name of the credential made on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// First start: writes the admin credential and a join token into
/// `data_dir`. Later starts: a missing admin credential is made anew (how an
/// operator with the host's root recovers a lost one), and an existing one
/// is pointed at the address the master now listens on. Returns the files
/// written. Nothing when the master runs insecure.
pub async fn bootstrap(
    credentials: &Credentials,
    data_dir: &Path,
    admin_addr: &str,
    first_start: bool,
) -> Result<Vec<PathBuf>, MasterError> {
    if credentials.pki().is_none() {
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    let cred_path = data_dir.join(ADMIN_CREDENTIAL);
    let internal = |e: cdn_common::tls::TlsError| MasterError::Internal(e.to_string());
    match Credential::load(&cred_path) {
        Ok((mut cred, _)) => {
            if cred.master != admin_addr {
                cred.master = admin_addr.to_string();
                cred.save(&cred_path).map_err(internal)?;
            }
        }
        Err(_) => {
            let name = credentials.free_user_name(BOOTSTRAP_ADMIN);
            let slot = credentials.reserve_user(&name)?;
            let (rec, cert, key) = credentials.add_user(slot, "masterd", Role::Admin).await?;
            let cred = Credential {
                user: rec.name,
                role: Role::Admin.as_str().to_string(),
                master: admin_addr.to_string(),
                server_name: None,
                ca: credentials.server_ca_pem().to_string(),
                cert,
                key,
            };
            cred.save(&cred_path).map_err(internal)?;
            written.push(cred_path);
        }
    }
    if first_start {
        let (token, _) = credentials
            .create_token("masterd", None, 0, "made on first start")
            .await?;
        let path = data_dir.join(JOIN_TOKEN_FILE);
        cdn_common::tls::write_private(&path, format!("{token}\n").as_bytes()).map_err(internal)?;
        written.push(path);
    }
    Ok(written)
}
