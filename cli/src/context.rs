//! Which master, with which credential, and the one connection an
//! invocation uses.
//!
//! The config file (`$XDG_CONFIG_HOME/cdnctl/config.yml`, or
//! `$CDNCTL_CONFIG`) holds named contexts, each a master address (or
//! several: active/standby masters) with the CA, certificate and key of a
//! credential `masterd` issued, and the name of the current one. It holds
//! private keys, so it is written 0600 and a warning is printed when others
//! can read it.
//!
//! Every call goes through [`Context::call`]: it connects to the first
//! address that takes the connection, and when a standby answers
//! UNAVAILABLE naming the leader, it connects there and makes the call
//! once more (for a streaming call, only its opening is ever repeated).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdn_common::credential::Credential;
use cdn_common::tls::Keepalive;
use cdn_proto::v1::admin_service_client::AdminServiceClient;
use serde::{Deserialize, Deserializer, Serialize};
use tonic::transport::{Channel, ClientTlsConfig};

use crate::CliError;
use cdn_proto::limits::MAX_MESSAGE_BYTES;

/// HTTP/2 keepalive of cdnctl's connection: a master that vanished in the
/// middle of an `exec` or a push (host down, no TCP reset) is noticed
/// within about 10 to 20 seconds. Not more often than masterd's
/// `grpc.keepalive.min_ping_interval` allows (default 5s).
pub const KEEPALIVE: Keepalive = Keepalive {
    interval: Duration::from_secs(10),
    timeout: Duration::from_secs(10),
};

/// Per-invocation state: where the masters are, how to talk to them, the
/// time limit, and the connection in use.
#[derive(Debug, Clone)]
pub struct Context {
    /// `host:port` of each master, tried in order.
    pub masters: Vec<String>,
    /// Limit on connecting and on each call.
    pub timeout: Duration,
    /// The user's certificate and the CA; None = plaintext (`--insecure`).
    tls: Option<Arc<TlsIdentity>>,
    /// The credential's user name, when known.
    pub user: Option<String>,
    /// The connection in use, shared by the clones of this context: made
    /// on first use, replaced when a standby names the leader.
    connection: Arc<Mutex<Option<Connection>>>,
    /// With `--persist`: how long a connection holder stays after its last
    /// client, and the global flags it is started with.
    persist: Option<Persist>,
}

/// The settings of `--persist` (see [`crate::holder`]).
#[derive(Debug, Clone)]
pub struct Persist {
    /// How long the holder stays with no client connected.
    pub idle: Duration,
    /// cdnctl's global flags as given, so the holder picks the same master
    /// and credential.
    pub args: Vec<std::ffi::OsString>,
}

/// What TLS to a master needs: the CA, the user's certificate and key, and
/// the name to check the master against (default: each address's host).
#[derive(Debug)]
struct TlsIdentity {
    ca: String,
    cert: String,
    key: String,
    server_name: Option<String>,
}

/// A connected master.
#[derive(Debug, Clone)]
struct Connection {
    addr: String,
    client: AdminServiceClient<Channel>,
}

/// One named master in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextEntry {
    /// One `host:port`, or several separated by commas (tried in order);
    /// the file may also hold a list.
    #[serde(deserialize_with = "one_or_many")]
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

/// A master field as one string, or a list of addresses joined by commas.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Field {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Field::deserialize(d)? {
        Field::One(s) => s,
        Field::Many(v) => v.join(","),
    })
}

/// The addresses of `field` (one `host:port` or several separated by
/// commas), each checked to be `host:port`.
pub fn master_addrs(field: &str) -> Result<Vec<String>, CliError> {
    let addrs = cdn_common::credential::masters(field);
    if addrs.is_empty() {
        return Err(CliError::Local(format!(
            "master address `{field}` must be host:port (several: host:port,host:port)"
        )));
    }
    for a in &addrs {
        let port_ok = a.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !port_ok {
            return Err(CliError::Local(format!(
                "master address `{a}` must be host:port"
            )));
        }
    }
    Ok(addrs)
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
    /// Reads the config file (empty when it does not exist), warning on
    /// stderr when others can read it.
    pub fn load() -> Result<(Self, Option<PathBuf>), CliError> {
        let Some(path) = config_file() else {
            return Ok((Self::default(), None));
        };
        let cfg = Self::read(&path)?;
        if !cfg.contexts.is_empty()
            && let Some(w) = cdn_common::tls::exposure_warning(&path)
        {
            crate::output::print_diagnostic(&format!("cdnctl: warning: {w}"));
        }
        Ok((cfg, Some(path)))
    }

    /// Reads the config file at `path` (empty when it does not exist),
    /// saying nothing.
    pub fn read(path: &Path) -> Result<Self, CliError> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Local(format!(
                "{}: cannot read: {}",
                path.display(),
                crate::error::describe_io(&e)
            ))
        })?;
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        cdn_common::yaml::from_str(&text)
            .map_err(|e| CliError::Local(format!("{}: {e}", path.display())))
    }

    /// Writes the config file with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        if let Some(dir) = path.parent() {
            cdn_common::tls::create_private_dir(dir)
                .map_err(|e| CliError::Local(format!("{}: cannot create: {e}", dir.display())))?;
        }
        let text = cdn_common::yaml::to_string(self)
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
        let masters = master_addrs(&master)?;
        let insecure = sel.insecure || entry.as_ref().is_some_and(|e| e.insecure);
        let (tls, user) = if insecure {
            (None, entry.map(|e| e.user).filter(|u| !u.is_empty()))
        } else {
            let Some(e) = entry.filter(|e| !e.cert.is_empty()) else {
                return Err(CliError::Local(format!(
                    "no credential for the master at {}: run `cdnctl context add NAME --credential FILE` with the admin.credential masterd wrote in its data directory (or a file from `masterd user add`), or pass --credential FILE; --insecure talks to a master started with --insecure",
                    masters.join(",")
                )));
            };
            let tls = TlsIdentity {
                ca: e.ca,
                cert: e.cert,
                key: e.key,
                server_name: e.server_name,
            };
            (Some(Arc::new(tls)), Some(e.user))
        };
        Ok(Self {
            masters,
            timeout,
            tls,
            user,
            connection: Arc::default(),
            persist: None,
        })
    }

    /// Uses (and, when there is none yet, starts) a local connection
    /// holder for this master and credential (`--persist`).
    pub fn with_persist(mut self, persist: Option<Persist>) -> Self {
        self.persist = persist;
        self
    }

    /// The socket of the connection holder of this master and credential.
    pub fn holder_socket(&self) -> Result<crate::holder::Socket, crate::holder::HolderError> {
        let identity = self.tls.as_ref().map(|t| {
            (
                t.cert.as_str(),
                t.server_name.as_deref().unwrap_or_default(),
            )
        });
        crate::holder::socket_for(&self.masters, identity)
    }

    /// A channel to the first master that takes the connection, made by
    /// this process (what a connection holder holds).
    pub async fn direct_channel(&self) -> Result<Channel, CliError> {
        let mut refused = Vec::new();
        for addr in &self.masters {
            match self.dial_channel(addr).await {
                Ok(channel) => return Ok(channel),
                Err(reason) => refused.push((addr.clone(), reason)),
            }
        }
        Err(unreachable(refused))
    }

    /// The master in use: the address connected to, else the configured
    /// ones.
    pub fn master(&self) -> String {
        match self.connection.lock().ok().and_then(|c| c.clone()) {
            Some(c) => c.addr,
            None => self.masters.join(","),
        }
    }

    /// Makes a call with `request` through `call`, which gets a client of
    /// the master in use: connected on first use to the first address that
    /// takes the connection. A standby's refusal naming the leader connects
    /// there and makes the call once more; any other failure is the error,
    /// naming the master. For a streaming call `call` only opens the
    /// stream, so a stream under way is never repeated.
    pub async fn call<Req, T, F, Fut>(&self, request: Req, mut call: F) -> Result<T, CliError>
    where
        Req: Clone,
        F: FnMut(AdminServiceClient<Channel>, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = self.client().await?;
        let refusal = match call(client, request.clone()).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) => s,
        };
        let Some(leader) = cdn_common::leader::leader_hint(&refusal) else {
            return Err(self.call_error(&refusal));
        };
        let client = self.connect_to(&leader).await?;
        call(client, request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| self.call_error(&s))
    }

    /// Forgets the connection in use (it broke), so that the next call
    /// dials again, trying every configured master.
    pub fn drop_connection(&self) {
        if let Ok(mut c) = self.connection.lock() {
            *c = None;
        }
    }

    /// Connects to the master now (the first call would), so that the
    /// connection is made while something else is done.
    pub async fn connect(&self) -> Result<(), CliError> {
        self.client().await.map(drop)
    }

    /// The client of the master in use, connecting on first use.
    async fn client(&self) -> Result<AdminServiceClient<Channel>, CliError> {
        if let Some(c) = self.connection.lock().ok().and_then(|c| c.clone()) {
            return Ok(c.client);
        }
        if let Some(client) = self.through_holder().await {
            return Ok(client);
        }
        let mut refused = Vec::new();
        for addr in &self.masters {
            match self.dial(addr).await {
                Ok(client) => return Ok(self.keep(addr, client)),
                Err(reason) => refused.push((addr.clone(), reason)),
            }
        }
        Err(unreachable(refused))
    }

    /// With `--persist`: a client through the holder's socket when one is
    /// listening; else starts one for the next invocations (this one then
    /// connects by itself).
    async fn through_holder(&self) -> Option<AdminServiceClient<Channel>> {
        let persist = self.persist.as_ref()?;
        let socket = match self.holder_socket() {
            Ok(s) => s,
            Err(e) => {
                crate::output::print_diagnostic(&format!("cdnctl: warning: {e}"));
                return None;
            }
        };
        match socket.connect(self.timeout).await {
            Some(channel) => {
                let addr = self.masters.join(",");
                Some(self.keep(&addr, admin_client(channel)))
            }
            None => {
                socket.spawn(&persist.args, persist.idle);
                None
            }
        }
    }

    /// Connects to `addr` (a leader a standby named) and uses it from now.
    async fn connect_to(&self, addr: &str) -> Result<AdminServiceClient<Channel>, CliError> {
        let client = self
            .dial(addr)
            .await
            .map_err(|reason| CliError::Unreachable {
                addr: addr.to_string(),
                reason,
            })?;
        Ok(self.keep(addr, client))
    }

    fn keep(&self, addr: &str, client: AdminServiceClient<Channel>) -> AdminServiceClient<Channel> {
        if let Ok(mut c) = self.connection.lock() {
            *c = Some(Connection {
                addr: addr.to_string(),
                client: client.clone(),
            });
        }
        client
    }

    /// Connects to the master at `addr`: TLS checked against the
    /// credential's server name, else the host of `addr`; keepalive on.
    async fn dial(&self, addr: &str) -> Result<AdminServiceClient<Channel>, String> {
        self.dial_channel(addr).await.map(admin_client)
    }

    async fn dial_channel(&self, addr: &str) -> Result<Channel, String> {
        cdn_common::tls::connect_with(addr, self.tls_for(addr), self.timeout, Some(KEEPALIVE)).await
    }

    fn tls_for(&self, addr: &str) -> Option<ClientTlsConfig> {
        self.tls.as_ref().map(|t| {
            let name = t
                .server_name
                .clone()
                .unwrap_or_else(|| cdn_common::tls::host_of(addr));
            cdn_common::tls::client_tls(&t.ca, Some((&t.cert, &t.key)), &name)
        })
    }

    /// Maps a failed call to an error naming the master in use.
    pub fn call_error(&self, s: &tonic::Status) -> CliError {
        let master = self.master();
        let msg = s.message();
        if self.tls.is_none()
            && (msg.contains("protocol error")
                || msg.contains("http2 error")
                || msg.contains("transport error"))
        {
            return CliError::Unreachable {
                addr: master,
                reason: "no plaintext gRPC answer; the master probably speaks TLS here: drop --insecure and use a credential (`cdnctl context add`)".into(),
            };
        }
        if matches!(s.code(), tonic::Code::Unknown | tonic::Code::Internal)
            && crate::error::connection_lost(s)
        {
            // The connection broke under the call (the master was killed or
            // failed over): not an answer of the master's.
            return CliError::ConnectionLost(format!(
                "lost the connection to the master at {master} (master stopped or failed over)"
            ));
        }
        CliError::from_status(&master, s)
    }

    /// The name sent as author where the master does not know the caller
    /// (an insecure master): the credential's user, else the local user.
    pub fn author(&self) -> String {
        self.user.clone().unwrap_or_else(crate::local_user)
    }
}

/// An AdminService client on `channel` with cdnctl's message limits.
fn admin_client(channel: Channel) -> AdminServiceClient<Channel> {
    AdminServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The error when no master took the connection: each address's reason.
fn unreachable(refused: Vec<(String, String)>) -> CliError {
    match <[_; 1]>::try_from(refused) {
        Ok([(addr, reason)]) => CliError::Unreachable { addr, reason },
        Err(all) => CliError::NoMaster(all),
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::task::{Context as TaskContext, Poll};

    use cdn_proto::v1::WhoAmIRequest;
    use tonic::body::Body;
    use tonic::codegen::http;
    use tonic::server::NamedService;

    use super::*;

    #[test]
    fn a_master_field_is_one_address_or_several() {
        assert_eq!(master_addrs("m:1").unwrap(), ["m:1"]);
        assert_eq!(master_addrs("m1:1, [::1]:2").unwrap(), ["m1:1", "[::1]:2"]);
        for bad in ["", "m1", "m1:1,m2", ":5", "m:0", "m:x"] {
            assert!(master_addrs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_file_takes_a_list_or_a_string_and_writes_a_string() {
        let text = "contexts:
  old: {master: 'm1:1'}
  comma: {master: 'm1:1,m2:2'}
  list: {master: ['m1:1', 'm2:2']}
";
        let file: FileConfig = cdn_common::yaml::from_str(text).unwrap();
        assert_eq!(file.contexts["old"].master, "m1:1");
        assert_eq!(file.contexts["comma"].master, "m1:1,m2:2");
        assert_eq!(file.contexts["list"].master, "m1:1,m2:2");
        let written = cdn_common::yaml::to_string(&file).unwrap();
        assert!(written.contains("master: m1:1,m2:2"), "{written}");
        let again: FileConfig = cdn_common::yaml::from_str(&written).unwrap();
        assert_eq!(again, file);
    }

    /// A master that answers every call with `status` (a standby, or a
    /// leader refusing with a status of its own).
    #[derive(Clone)]
    struct Answers(tonic::Status);

    impl tonic::codegen::Service<http::Request<Body>> for Answers {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            std::future::ready(Ok(self.0.clone().into_http()))
        }
    }

    impl NamedService for Answers {
        const NAME: &'static str = "cdn.v1.AdminService";
    }

    /// Serves `answers` on a loopback port until the runtime ends.
    async fn serve(answers: tonic::Status) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(Answers(answers))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }

    fn plaintext(masters: &[&str]) -> Context {
        Context {
            masters: masters.iter().map(|m| m.to_string()).collect(),
            timeout: Duration::from_secs(5),
            tls: None,
            user: None,
            connection: Arc::default(),
            persist: None,
        }
    }

    async fn who_am_i(ctx: &Context) -> Result<cdn_proto::v1::WhoAmIResponse, CliError> {
        ctx.call(
            WhoAmIRequest {},
            |mut c, r| async move { c.who_am_i(r).await },
        )
        .await
    }

    fn dead_addr() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_standbys_refusal_sends_the_call_to_the_leader_once() {
        let leader = serve(tonic::Status::permission_denied("answered by the leader")).await;
        let standby = serve(cdn_common::leader::standby_status(&leader)).await;
        // The first address takes no connection: the next one is used.
        let ctx = plaintext(&[&dead_addr(), &standby]);
        match who_am_i(&ctx).await {
            Err(CliError::Master(m)) => assert_eq!(m, "answered by the leader"),
            other => panic!("{other:?}"),
        }
        assert_eq!(ctx.master(), leader, "the leader is used from now on");

        // Two standbys naming each other: one more try, then the refusal.
        let other = serve(cdn_common::leader::standby_status(&standby)).await;
        let ctx = plaintext(&[&other]);
        match who_am_i(&ctx).await {
            Err(CliError::Unreachable { addr, reason }) => {
                assert_eq!(addr, standby);
                assert!(reason.contains("standby"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn no_master_taking_the_connection_names_each_address() {
        let (a, b) = (dead_addr(), dead_addr());
        match who_am_i(&plaintext(&[&a])).await {
            Err(e @ CliError::Unreachable { .. }) => assert_eq!(
                e.to_string(),
                format!("cannot reach master at {a}: connection refused")
            ),
            other => panic!("{other:?}"),
        }
        match who_am_i(&plaintext(&[&a, &b])).await {
            Err(e @ CliError::NoMaster(_)) => assert_eq!(
                e.to_string(),
                format!(
                    "cannot reach any master: {a}: connection refused; {b}: connection refused"
                )
            ),
            other => panic!("{other:?}"),
        }
    }
}
