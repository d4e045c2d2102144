//! Credentials: the owner of issued certificates, join tokens, user
//! credentials and revocations.
//!
//! The book is in memory behind a read-write lock that authentication reads
//! on every call. Every change is one short section under the write lock
//! (no I/O in it) that changes the book and queues its store write in the
//! same breath, so writes reach the store in the order the changes were
//! made; the change is then awaited until durable and undone if the store
//! refuses it. Slow work — signing a certificate, making a key — happens
//! between a *reservation* (the name or the token use is taken) and the
//! commit, outside the lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use cdn_common::tls::{JoinToken, secret_hash};
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::error::{MasterError, fmt_ms};
use crate::pki::{Issued, Pki};
use crate::role::Role;
use crate::store::{CertKind, CertRecord, Loaded, Store, TokenRecord, Write};

/// The certificates, tokens and revocations the master knows.
#[derive(Default)]
struct Book {
    /// Valid certificates by fingerprint.
    certs: HashMap<String, CertRecord>,
    /// Fingerprints of valid certificates by kind and name.
    by_name: HashMap<(CertKind, String), Vec<String>>,
    /// Revoked node names that may not enrol again until an admin allows
    /// it, with their revoked certificates.
    barred: HashMap<String, Vec<CertRecord>>,
    /// Join tokens by id.
    tokens: BTreeMap<String, TokenRecord>,
    /// Names whose certificate is being made right now.
    reserved: HashSet<(CertKind, String)>,
}

impl Book {
    fn insert_cert(&mut self, c: CertRecord) {
        self.by_name
            .entry((c.kind, c.name.clone()))
            .or_default()
            .push(c.fingerprint.clone());
        self.certs.insert(c.fingerprint.clone(), c);
    }

    fn remove_cert(&mut self, fingerprint: &str) -> Option<CertRecord> {
        let c = self.certs.remove(fingerprint)?;
        let key = (c.kind, c.name.clone());
        if let Some(fps) = self.by_name.get_mut(&key) {
            fps.retain(|f| f != fingerprint);
            if fps.is_empty() {
                self.by_name.remove(&key);
            }
        }
        Some(c)
    }

    /// Valid certificates of `kind` named `name`.
    fn named(&self, kind: CertKind, name: &str) -> Vec<&CertRecord> {
        self.by_name
            .get(&(kind, name.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|f| self.certs.get(f))
            .collect()
    }

    fn taken(&self, kind: CertKind, name: &str) -> bool {
        self.by_name.contains_key(&(kind, name.to_string()))
            || self.reserved.contains(&(kind, name.to_string()))
    }
}

/// What a revocation does to a node's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revocation {
    /// The name may not enrol again until an admin allows it.
    Bar,
    /// The node was deleted: the name is free.
    Forget,
}

/// The owner of credentials.
pub struct Credentials {
    pki: Option<Arc<Pki>>,
    store: Store,
    client_ttl: Duration,
    /// The CA a credential carries to check the master with.
    server_ca_pem: String,
    book: RwLock<Book>,
    /// One token per certificate in use, cancelled when it is revoked.
    in_use: DashMap<String, CancellationToken>,
}

/// A node name and a join-token use taken for an enrolment in progress.
/// [`Credentials::enrolled`] turns it into a certificate; dropped before
/// that (a refused CSR, a caller that went away mid-call), it gives both
/// back.
pub struct EnrolmentSlot<'a> {
    credentials: &'a Credentials,
    node: String,
    token_id: String,
    /// The reservation became a certificate (or was undone by hand).
    settled: bool,
}

impl Drop for EnrolmentSlot<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut book = self.credentials.write();
        book.reserved.remove(&(CertKind::Node, self.node.clone()));
        if let Some(t) = book.tokens.get_mut(&self.token_id) {
            t.used = t.used.saturating_sub(1);
        }
    }
}

/// A user name taken while its credential is made; dropped unused, it
/// frees the name.
pub struct UserSlot<'a> {
    credentials: &'a Credentials,
    name: String,
}

impl Drop for UserSlot<'_> {
    fn drop(&mut self) {
        self.credentials
            .write()
            .reserved
            .remove(&(CertKind::User, self.name.clone()));
    }
}

fn now_ms() -> i64 {
    cdn_common::unix_millis_now()
}

impl Credentials {
    /// The book as `loaded`; `pki` is None when the master runs insecure.
    /// `server_ca_pem` overrides the CA credentials carry (the operator's
    /// own certificate is served).
    pub fn load(
        loaded: &mut Loaded,
        pki: Option<Arc<Pki>>,
        store: Store,
        client_ttl: Duration,
        server_ca_pem: Option<String>,
    ) -> Self {
        let mut book = Book::default();
        for c in std::mem::take(&mut loaded.certs) {
            if c.revoked_ms == 0 {
                book.insert_cert(c);
            } else if c.kind == CertKind::Node && !c.readmitted {
                book.barred.entry(c.name.clone()).or_default().push(c);
            }
        }
        book.tokens = std::mem::take(&mut loaded.tokens)
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        let server_ca_pem = server_ca_pem
            .or_else(|| pki.as_ref().map(|p| p.ca_pem().to_string()))
            .unwrap_or_default();
        Self {
            pki,
            store,
            client_ttl,
            server_ca_pem,
            book: RwLock::new(book),
            in_use: DashMap::new(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Book> {
        self.book.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Book> {
        self.book.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The CA and server identity (None when insecure).
    pub fn pki(&self) -> Option<&Arc<Pki>> {
        self.pki.as_ref()
    }

    fn pki_or(&self, what: &str) -> Result<&Arc<Pki>, MasterError> {
        self.pki.as_ref().ok_or_else(|| {
            MasterError::Precondition(format!(
                "this master runs with --insecure: there are no {what}"
            ))
        })
    }

    /// The CA a credential carries to check the master with.
    pub fn server_ca_pem(&self) -> &str {
        &self.server_ca_pem
    }

    /// Lifetime of the certificates issued to nodes and users.
    pub fn client_ttl(&self) -> Duration {
        self.client_ttl
    }

    /// The valid certificate with this fingerprint.
    pub fn cert(&self, fingerprint: &str) -> Option<CertRecord> {
        self.read().certs.get(fingerprint).cloned()
    }

    /// Whether a valid certificate has this fingerprint.
    pub fn knows(&self, fingerprint: &str) -> bool {
        self.read().certs.contains_key(fingerprint)
    }

    /// A token cancelled when the certificate `fingerprint` is revoked.
    pub fn revocation_of(&self, fingerprint: &str) -> CancellationToken {
        self.in_use
            .entry(fingerprint.to_string())
            .or_default()
            .child_token()
    }

    /// Takes a use of join token `token` and the name `node` for an
    /// enrolment, or says why not (the error is the caller's to count).
    pub fn reserve_enrolment(
        &self,
        token: &JoinToken,
        node: &str,
    ) -> Result<EnrolmentSlot<'_>, MasterError> {
        let mut book = self.write();
        let rec = match book.tokens.get(&token.id) {
            Some(t) if t.secret_hash == secret_hash(&token.secret) => t,
            _ => {
                return Err(MasterError::Unauthenticated(
                    "join token not valid (unknown id or wrong secret)".into(),
                ));
            }
        };
        if rec.revoked {
            return Err(MasterError::Unauthenticated(format!(
                "join token {} was revoked",
                rec.id
            )));
        }
        if rec.expires_ms != 0 && rec.expires_ms <= now_ms() {
            return Err(MasterError::Unauthenticated(format!(
                "join token {} expired {}",
                rec.id,
                fmt_ms(rec.expires_ms)
            )));
        }
        if rec.max_uses != 0 && rec.used >= rec.max_uses {
            return Err(MasterError::Unauthenticated(format!(
                "join token {} is used up ({} of {} uses)",
                rec.id, rec.used, rec.max_uses
            )));
        }
        if book.barred.contains_key(node) {
            return Err(MasterError::PermissionDenied(format!(
                "node `{node}` was revoked; it may enrol again only after an admin runs `masterd node allow {node}`"
            )));
        }
        if book.taken(CertKind::Node, node) {
            let issued = book
                .named(CertKind::Node, node)
                .first()
                .map_or(0, |c| c.issued_ms);
            return Err(MasterError::AlreadyExists(format!(
                "node `{node}` is already enrolled (certificate issued {}); a second machine cannot take its name. To enrol a replacement, run `masterd node revoke {node}` first",
                fmt_ms(issued)
            )));
        }
        let token_id = token.id.clone();
        if let Some(t) = book.tokens.get_mut(&token_id) {
            t.used += 1;
        }
        book.reserved.insert((CertKind::Node, node.to_string()));
        Ok(EnrolmentSlot {
            credentials: self,
            node: node.to_string(),
            token_id,
            settled: false,
        })
    }

    /// Records the certificate made for `slot` and the token use, durably.
    pub async fn enrolled(
        &self,
        mut slot: EnrolmentSlot<'_>,
        issued: &Issued,
    ) -> Result<TokenRecord, MasterError> {
        let cert = CertRecord {
            fingerprint: issued.fingerprint.clone(),
            kind: CertKind::Node,
            name: slot.node.clone(),
            role: None,
            issued_ms: now_ms(),
            not_after_ms: issued.not_after_ms,
            issued_by: format!("token:{}", slot.token_id),
            revoked_ms: 0,
            readmitted: false,
        };
        // On an error here, dropping the slot gives back what it took.
        let reserved = self.store.reserve().await?;
        let (token, pending) = {
            let mut book = self.write();
            book.reserved.remove(&(CertKind::Node, slot.node.clone()));
            slot.settled = true;
            let token = book.tokens.get(&slot.token_id).cloned().unwrap_or_default();
            book.insert_cert(cert.clone());
            let pending = reserved.send(vec![Write::Token(token.clone()), Write::Cert(cert)]);
            (token, pending)
        };
        if let Err(e) = pending.await {
            let mut book = self.write();
            book.remove_cert(&issued.fingerprint);
            if let Some(t) = book.tokens.get_mut(&slot.token_id) {
                t.used = t.used.saturating_sub(1);
            }
            return Err(e.into());
        }
        Ok(token)
    }

    /// Makes a join token; returns its text (shown once) and its record.
    pub async fn create_token(
        &self,
        created_by: &str,
        ttl: Option<Duration>,
        max_uses: u32,
        description: &str,
    ) -> Result<(String, TokenRecord), MasterError> {
        let pki = self.pki_or("join tokens")?;
        let token = JoinToken::generate(pki.ca_fingerprint());
        let created = now_ms();
        let rec = TokenRecord {
            id: token.id.clone(),
            secret_hash: secret_hash(&token.secret),
            description: description.to_string(),
            created_ms: created,
            created_by: created_by.to_string(),
            expires_ms: ttl.map_or(0, |t| created + t.as_millis() as i64),
            max_uses,
            used: 0,
            revoked: false,
        };
        self.change(
            |book| {
                book.tokens.insert(rec.id.clone(), rec.clone());
                Ok((vec![Write::Token(rec.clone())], ()))
            },
            |book, ()| {
                book.tokens.remove(&rec.id);
            },
        )
        .await?;
        Ok((token.to_string(), rec))
    }

    /// Every join token, oldest first.
    pub fn tokens(&self) -> Vec<TokenRecord> {
        let mut v: Vec<TokenRecord> = self.read().tokens.values().cloned().collect();
        v.sort_by_key(|t| t.created_ms);
        v
    }

    /// Revokes a join token (certificates it bought stay valid).
    pub async fn revoke_token(&self, id: &str) -> Result<(), MasterError> {
        let id = id.to_string();
        self.change(
            |book| {
                let Some(rec) = book.tokens.get_mut(&id) else {
                    return Err(MasterError::NotFound(format!(
                        "no join token with id `{}`",
                        id.escape_default()
                    )));
                };
                rec.revoked = true;
                Ok((vec![Write::Token(rec.clone())], ()))
            },
            |book, ()| {
                if let Some(rec) = book.tokens.get_mut(&id) {
                    rec.revoked = false;
                }
            },
        )
        .await
    }

    /// Takes the name of a new user, or says it exists.
    pub fn reserve_user(&self, name: &str) -> Result<UserSlot<'_>, MasterError> {
        self.pki_or("user credentials")?;
        cdn_common::check_node_id(name)
            .map_err(|e| MasterError::Invalid(e.replace("node id", "user name")))?;
        let mut book = self.write();
        if book.taken(CertKind::User, name) {
            return Err(MasterError::AlreadyExists(format!(
                "user `{name}` already exists; remove it first to issue a new credential"
            )));
        }
        book.reserved.insert((CertKind::User, name.to_string()));
        Ok(UserSlot {
            credentials: self,
            name: name.to_string(),
        })
    }

    /// Issues a credential to the user of `slot`; returns the record and the
    /// certificate and key PEM.
    pub async fn add_user(
        &self,
        slot: UserSlot<'_>,
        issued_by: &str,
        role: Role,
    ) -> Result<(CertRecord, String, String), MasterError> {
        // On any error, dropping the slot frees the name.
        let pki = Arc::clone(self.pki_or("user credentials")?);
        let (name, ttl) = (slot.name.clone(), self.client_ttl);
        let (issued, key_pem) = tokio::task::spawn_blocking(move || pki.issue_user(&name, ttl))
            .await
            .map_err(|e| MasterError::Internal(e.to_string()))?
            .map_err(|e| MasterError::Internal(e.to_string()))?;
        let key = (CertKind::User, slot.name.clone());
        let rec = CertRecord {
            fingerprint: issued.fingerprint,
            kind: CertKind::User,
            name: slot.name.clone(),
            role: Some(role),
            issued_ms: now_ms(),
            not_after_ms: issued.not_after_ms,
            issued_by: issued_by.to_string(),
            revoked_ms: 0,
            readmitted: false,
        };
        self.change(
            |book| {
                book.reserved.remove(&key);
                book.insert_cert(rec.clone());
                Ok((vec![Write::Cert(rec.clone())], ()))
            },
            |book, ()| {
                book.remove_cert(&rec.fingerprint);
            },
        )
        .await?;
        drop(slot);
        Ok((rec, issued.cert_pem, key_pem))
    }

    /// Valid user certificates, by name.
    pub fn users(&self) -> Vec<CertRecord> {
        let mut v: Vec<CertRecord> = self
            .read()
            .certs
            .values()
            .filter(|c| c.kind == CertKind::User)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Revokes every valid certificate of `kind` named `name`; returns how
    /// many. Effective on the next call made with them; calls in progress
    /// with them (exec sessions, event streams) end now.
    pub async fn revoke(&self, kind: CertKind, name: &str) -> Result<u32, MasterError> {
        self.revoke_named(kind, name, Revocation::Bar).await
    }

    /// Revokes every valid certificate of node `name` because the node was
    /// deleted: its agent cannot come back with it, but the name is not
    /// barred, so a machine enrolled anew with a join token may take it.
    /// 0 when it has none (it never enrolled, or the master is insecure).
    pub async fn revoke_deleted_node(&self, name: &str) -> Result<u32, MasterError> {
        if self.read().named(CertKind::Node, name).is_empty() {
            return Ok(0);
        }
        self.revoke_named(CertKind::Node, name, Revocation::Forget)
            .await
    }

    async fn revoke_named(
        &self,
        kind: CertKind,
        name: &str,
        how: Revocation,
    ) -> Result<u32, MasterError> {
        let now = now_ms();
        let revoked = self
            .change(
                |book| {
                    let fps: Vec<String> = book
                        .named(kind, name)
                        .iter()
                        .map(|c| c.fingerprint.clone())
                        .collect();
                    if fps.is_empty() {
                        return Err(MasterError::NotFound(format!(
                            "no valid certificate for {} `{}`",
                            kind.as_str(),
                            name.escape_default()
                        )));
                    }
                    let mut revoked = Vec::new();
                    for fp in fps {
                        if let Some(mut c) = book.remove_cert(&fp) {
                            c.revoked_ms = now;
                            // Stored as readmitted, the name is not barred
                            // when the master loads it again either.
                            c.readmitted = how == Revocation::Forget;
                            revoked.push(c);
                        }
                    }
                    if kind == CertKind::Node && how == Revocation::Bar {
                        book.barred
                            .entry(name.to_string())
                            .or_default()
                            .extend(revoked.iter().cloned());
                    }
                    Ok((revoked.iter().cloned().map(Write::Cert).collect(), revoked))
                },
                |book, revoked: &Vec<CertRecord>| {
                    for c in revoked {
                        let mut valid = c.clone();
                        valid.revoked_ms = 0;
                        valid.readmitted = false;
                        book.insert_cert(valid);
                    }
                    if let Some(list) = book.barred.get_mut(name) {
                        list.retain(|c| !revoked.iter().any(|r| r.fingerprint == c.fingerprint));
                        if list.is_empty() {
                            book.barred.remove(name);
                        }
                    }
                },
            )
            .await?;
        for c in &revoked {
            if let Some((_, t)) = self.in_use.remove(&c.fingerprint) {
                t.cancel();
            }
        }
        Ok(revoked.len() as u32)
    }

    /// Lets a revoked node name enrol again.
    pub async fn allow_node(&self, name: &str) -> Result<(), MasterError> {
        self.change(
            |book| {
                let Some(records) = book.barred.remove(name) else {
                    return Err(MasterError::NotFound(format!(
                        "node `{}` is not barred from enrolling",
                        name.escape_default()
                    )));
                };
                let writes = records
                    .iter()
                    .map(|c| {
                        Write::Cert(CertRecord {
                            readmitted: true,
                            ..c.clone()
                        })
                    })
                    .collect();
                Ok((writes, records))
            },
            |book, records: &Vec<CertRecord>| {
                book.barred.insert(name.to_string(), records.clone());
            },
        )
        .await
        .map(|_| ())
    }

    /// `admin`, or `admin-2`, `admin-3`… when that name is taken.
    pub fn free_user_name(&self, base: &str) -> String {
        let book = self.read();
        if !book.taken(CertKind::User, base) {
            return base.into();
        }
        (2..)
            .map(|i| format!("{base}-{i}"))
            .find(|n| !book.taken(CertKind::User, n))
            .unwrap_or_else(|| base.into())
    }

    /// One change of the book: `apply` changes it under the write lock and
    /// returns the writes that record the change, queued in the same
    /// section; if the store refuses them, `undo` takes the change back.
    async fn change<T>(
        &self,
        apply: impl FnOnce(&mut Book) -> Result<(Vec<Write>, T), MasterError>,
        undo: impl FnOnce(&mut Book, &T),
    ) -> Result<T, MasterError> {
        let reserved = self.store.reserve().await?;
        let (pending, done) = {
            let mut book = self.write();
            let (writes, done) = apply(&mut book)?;
            (reserved.send(writes), done)
        };
        if let Err(e) = pending.await {
            undo(&mut self.write(), &done);
            return Err(MasterError::Store(e));
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmbeddedStore;

    async fn book(dir: &std::path::Path) -> (Credentials, crate::store::StoreWriter) {
        let (store, writer) = Store::start(Arc::new(EmbeddedStore::open(&dir.join("db")).unwrap()));
        let (pki, _) = Pki::load_or_create(&dir.join("pki"), &["localhost".into()]).unwrap();
        let mut loaded = store.load().await.unwrap();
        let c = Credentials::load(
            &mut loaded,
            Some(Arc::new(pki)),
            store,
            Duration::from_secs(3600),
            None,
        );
        (c, writer)
    }

    #[tokio::test]
    async fn an_abandoned_enrolment_gives_back_its_name_and_token_use() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _writer) = book(dir.path()).await;
        let (text, _) = c.create_token("t", None, 1, "").await.unwrap();
        let token: JoinToken = text.parse().unwrap();
        let slot = c.reserve_enrolment(&token, "n1").unwrap();
        assert!(matches!(
            c.reserve_enrolment(&token, "n2"),
            Err(MasterError::Unauthenticated(_))
        ));
        assert_eq!(c.tokens()[0].used, 1);
        drop(slot); // the caller went away before the certificate was made
        assert_eq!(c.tokens()[0].used, 0);
        let _again = c.reserve_enrolment(&token, "n1").unwrap();
        // A name being enrolled is taken, whatever token is shown.
        let (other, _) = c.create_token("t", None, 0, "").await.unwrap();
        assert!(matches!(
            c.reserve_enrolment(&other.parse().unwrap(), "n1"),
            Err(MasterError::AlreadyExists(_))
        ));
    }

    #[tokio::test]
    async fn users_are_unique_revoked_at_once_and_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (c, writer) = book(dir.path()).await;
        let slot = c.reserve_user("alice").unwrap();
        assert!(matches!(
            c.reserve_user("alice"),
            Err(MasterError::AlreadyExists(_))
        ));
        let (rec, _, _) = c.add_user(slot, "admin", Role::Operator).await.unwrap();
        assert!(c.knows(&rec.fingerprint));
        assert!(matches!(
            c.reserve_user("alice"),
            Err(MasterError::AlreadyExists(_))
        ));
        let revoked = c.revocation_of(&rec.fingerprint);
        assert_eq!(c.revoke(CertKind::User, "alice").await.unwrap(), 1);
        assert!(revoked.is_cancelled() && !c.knows(&rec.fingerprint));
        let slot = c.reserve_user("bob").unwrap();
        let (bob, _, _) = c.add_user(slot, "admin", Role::Viewer).await.unwrap();
        drop(c);
        writer.close().await;
        let (c, _writer) = book(dir.path()).await;
        assert!(c.knows(&bob.fingerprint) && !c.knows(&rec.fingerprint));
        assert_eq!(c.users().len(), 1);
    }

    /// Enrols `node` with `token` under a made-up certificate.
    async fn enrol(c: &Credentials, token: &JoinToken, node: &str, fingerprint: &str) {
        let slot = c.reserve_enrolment(token, node).unwrap();
        let issued = Issued {
            cert_pem: String::new(),
            fingerprint: fingerprint.into(),
            not_after_ms: now_ms() + 3_600_000,
        };
        c.enrolled(slot, &issued).await.unwrap();
    }

    #[tokio::test]
    async fn a_deleted_nodes_certificate_is_revoked_but_its_name_stays_free() {
        let dir = tempfile::tempdir().unwrap();
        let (c, writer) = book(dir.path()).await;
        let (text, _) = c.create_token("t", None, 0, "").await.unwrap();
        let token: JoinToken = text.parse().unwrap();
        enrol(&c, &token, "gone", "fp-gone").await;
        enrol(&c, &token, "cut", "fp-cut").await;
        let in_use = c.revocation_of("fp-gone");
        assert_eq!(c.revoke_deleted_node("gone").await.unwrap(), 1);
        assert!(in_use.is_cancelled() && !c.knows("fp-gone"));
        // Nothing left to revoke (or an insecure master): not an error.
        assert_eq!(c.revoke_deleted_node("gone").await.unwrap(), 0);
        assert_eq!(c.revoke_deleted_node("never-enrolled").await.unwrap(), 0);
        // `masterd node revoke` bars its name; deletion does not.
        c.revoke(CertKind::Node, "cut").await.unwrap();
        assert!(matches!(
            c.reserve_enrolment(&token, "cut"),
            Err(MasterError::PermissionDenied(_))
        ));
        drop(c.reserve_enrolment(&token, "gone").unwrap());
        // The same after a restart.
        drop(c);
        writer.close().await;
        let (c, _writer) = book(dir.path()).await;
        assert!(!c.knows("fp-gone"));
        drop(c.reserve_enrolment(&token, "gone").unwrap());
        assert!(c.reserve_enrolment(&token, "cut").is_err());
    }
}
