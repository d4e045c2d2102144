//! The local connection holder (opt-in, `--persist DURATION`): what ssh's
//! ControlMaster/ControlPersist is to ssh.
//!
//! Without it every cdnctl invocation opens its own connection to the
//! master, a full TLS 1.3 handshake with client certificate. With it, the
//! first invocation starts a holder in the background (`cdnctl
//! hold-connection`, a process of its own): it makes the mutual-TLS
//! connection to the master with the same credential and serves plain
//! HTTP/2 on a Unix socket; later invocations with the same master and
//! credential send their calls over that socket, and the holder forwards
//! them (frames as they are, nothing decoded) on its connection. It exits
//! after `DURATION` with no client connected.
//!
//! The socket lives in a directory only the user can enter
//! (`$XDG_RUNTIME_DIR/cdnctl`, else `<tmp>/cdnctl-<uid>`, mode 0700, owned
//! by the user, else the holder is not used), is itself 0600, and the
//! holder also refuses any connection whose peer (SO_PEERCRED) is not its
//! own user. Towards the master nothing changes: the same mutual TLS, the
//! same certificate, the same checks.
//!
//! TLS session resumption across processes was the other way to skip the
//! handshake; rustls (0.23) keeps client session tickets in memory only
//! (its `Tls13ClientSessionValue` cannot be written out), so it cannot.

use std::convert::Infallible;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint, Uri};

/// The hidden subcommand that runs a holder.
pub const HOLD_COMMAND: &str = "hold-connection";

/// Where the holder of one master and credential listens.
#[derive(Debug, Clone)]
pub struct Socket {
    pub path: PathBuf,
}

/// Why the holder cannot be used (the invocation then connects itself).
#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error("{dir}: {why}; not using a connection holder")]
    UnsafeDir { dir: String, why: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The directory of holder sockets: `$XDG_RUNTIME_DIR/cdnctl`, else
/// `<tmp>/cdnctl-<uid>`; created 0700, and refused unless it is the
/// user's own and closed to everyone else.
pub fn socket_dir() -> Result<PathBuf, HolderError> {
    let uid = nix::unistd::geteuid().as_raw();
    let dir = match dirs::runtime_dir() {
        Some(d) => d.join("cdnctl"),
        None => std::env::temp_dir().join(format!("cdnctl-{uid}")),
    };
    cdn_common::tls::create_private_dir(&dir)?;
    let meta = std::fs::symlink_metadata(&dir)?;
    let unsafe_dir = |why: String| HolderError::UnsafeDir {
        dir: dir.display().to_string(),
        why,
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("not a directory".into()));
    }
    if meta.uid() != uid {
        return Err(unsafe_dir(format!(
            "owned by uid {}, not {uid}",
            meta.uid()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(unsafe_dir(format!(
            "mode {:o}, must be 0700",
            meta.permissions().mode() & 0o777
        )));
    }
    Ok(dir)
}

/// The socket of the holder for `masters` with the credential `identity`
/// (certificate PEM and server name; None: plaintext): one holder per
/// master set and credential.
pub fn socket_for(
    masters: &[String],
    identity: Option<(&str, &str)>,
) -> Result<Socket, HolderError> {
    let mut h = Sha256::new();
    h.update(masters.join(",").as_bytes());
    match identity {
        Some((cert, name)) => {
            h.update(b"\0tls\0");
            h.update(cert.as_bytes());
            h.update(b"\0");
            h.update(name.as_bytes());
        }
        None => h.update(b"\0plaintext"),
    }
    let digest = h.finalize();
    let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    Ok(Socket {
        path: socket_dir()?.join(format!("{name}.sock")),
    })
}

impl Socket {
    /// A channel to the holder, if one is listening.
    pub async fn connect(&self, timeout: Duration) -> Option<Channel> {
        // Cheap check first: no socket, no holder.
        if !self.path.exists() {
            return None;
        }
        let path = self.path.clone();
        let connector = tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    UnixStream::connect(path).await?,
                ))
            }
        });
        Endpoint::from_static("http://cdnctl-holder")
            .connect_timeout(timeout)
            .timeout(timeout)
            .max_frame_size(cdn_proto::limits::CLIENT_FRAME_BYTES)
            .connect_with_connector(connector)
            .await
            .ok()
    }

    /// Starts a holder in the background for the same selection (`args`:
    /// cdnctl's global flags as given), idle for at most `idle`. Best
    /// effort: this invocation has its own connection anyway.
    pub fn spawn(&self, args: &[std::ffi::OsString], idle: Duration) {
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        use std::os::unix::process::CommandExt;
        let _ = std::process::Command::new(exe)
            .args(args)
            .arg(HOLD_COMMAND)
            .arg("--idle")
            .arg(cdn_common::duration::short(idle))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own process group: Ctrl-C on this terminal is not for it.
            .process_group(0)
            .spawn();
    }
}

/// Runs a holder: `channel` is its connection to the master; serves on
/// `socket` until no client has been connected for `idle`.
pub async fn hold(socket: &Socket, channel: Channel, idle: Duration) -> Result<(), HolderError> {
    if socket.path.exists() {
        if UnixStream::connect(&socket.path).await.is_ok() {
            return Ok(()); // another holder serves it already
        }
        let _ = std::fs::remove_file(&socket.path);
    }
    let listener = UnixListener::bind(&socket.path)?;
    std::fs::set_permissions(&socket.path, std::fs::Permissions::from_mode(0o600))?;
    let live = Arc::new(Live::default());
    let me = nix::unistd::geteuid().as_raw();
    let incoming = {
        let live = Arc::clone(&live);
        tokio_stream::StreamExt::filter_map(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            move |conn| {
                let conn = conn.ok()?;
                // Only this user's processes (the directory says so too).
                let uid = conn.peer_cred().ok()?.uid();
                (uid == me).then(|| Ok::<_, std::io::Error>(Client::new(conn, Arc::clone(&live))))
            },
        )
    };
    let result = tonic::transport::Server::builder()
        .max_frame_size(cdn_proto::limits::CLIENT_FRAME_BYTES)
        .add_service(Forward { channel })
        .serve_with_incoming_shutdown(incoming, live.idle_for(idle))
        .await;
    let _ = std::fs::remove_file(&socket.path);
    result.map_err(|e| HolderError::Io(std::io::Error::other(e.to_string())))
}

/// Counts the clients connected.
#[derive(Default)]
struct Live {
    clients: AtomicUsize,
    changed: Notify,
}

impl Live {
    /// Resolves once no client has been connected for `idle`.
    async fn idle_for(self: Arc<Self>, idle: Duration) {
        loop {
            let changed = self.changed.notified();
            if self.clients.load(Ordering::Acquire) == 0 {
                if tokio::time::timeout(idle, changed).await.is_err() {
                    return;
                }
            } else {
                changed.await;
            }
        }
    }
}

/// One client's connection, counted while it lives.
struct Client {
    conn: UnixStream,
    live: Arc<Live>,
}

impl Client {
    fn new(conn: UnixStream, live: Arc<Live>) -> Self {
        live.clients.fetch_add(1, Ordering::AcqRel);
        live.changed.notify_waiters();
        Self { conn, live }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.live.clients.fetch_sub(1, Ordering::AcqRel);
        self.live.changed.notify_waiters();
    }
}

impl tonic::transport::server::Connected for Client {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Client {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.conn).poll_read(cx, buf)
    }
}

impl AsyncWrite for Client {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.conn).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.conn).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.conn).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.conn).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.conn.is_write_vectored()
    }
}

/// Every AdminService call, forwarded on the holder's connection.
#[derive(Clone)]
struct Forward {
    channel: Channel,
}

impl tonic::codegen::Service<http::Request<Body>> for Forward {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let mut channel = self.channel.clone();
        Box::pin(async move {
            let sent = async {
                std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
                channel.call(request).await
            };
            Ok(match sent.await {
                Ok(response) => response,
                Err(e) => tonic::Status::unavailable(format!(
                    "the connection holder cannot reach the master: {}",
                    cdn_common::tls::root_cause(&e)
                ))
                .into_http(),
            })
        })
    }
}

impl NamedService for Forward {
    const NAME: &'static str = "cdn.v1.AdminService";
}

/// Whether `path` is a holder socket of this user (for tests and
/// diagnostics): a socket, owned by the user, mode 0600.
pub fn is_private_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| {
        m.file_type().is_socket()
            && m.uid() == nix::unistd::geteuid().as_raw()
            && m.permissions().mode() & 0o777 == 0o600
    })
}
