//! Accepted connections: socket options, the `grpc_connections_active`
//! gauge, the TLS handshake, and the PING policy every connection is held
//! to (gRFC A8: a client pinging more often than the master allows gets
//! GOAWAY `ENHANCE_YOUR_CALM` / `too_many_pings` and is disconnected).
//!
//! hyper's HTTP/2 server answers every PING and has no policy of its own,
//! so [`Policed`] reads the frame headers of the plaintext HTTP/2 byte
//! stream as it passes between TLS and hyper. It never parses payloads and
//! never changes a byte hyper reads or writes; it only adds one GOAWAY
//! frame between two of hyper's frames and then ends the connection.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::{self, PemObject};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// PINGs closer together than the minimum interval tolerated before the
/// connection is closed (gRFC A8 and grpc-go use 2).
pub const MAX_PING_STRIKES: u32 = 2;

/// What every accepted connection gets.
#[derive(Clone)]
pub struct Accept {
    /// SO_SNDBUF, bytes.
    pub send_buffer: usize,
    /// SO_RCVBUF, bytes.
    pub recv_buffer: usize,
    /// `grpc_connections_active`.
    pub open: Gauge,
    pub pings: PingPolicy,
    /// Owner of the accept loop and the TLS handshakes in progress.
    pub tasks: TaskTracker,
    /// Abandons handshakes in progress (the master is stopping).
    pub stop: CancellationToken,
}

/// How often a client may ping.
#[derive(Clone)]
pub struct PingPolicy {
    /// Shortest interval between a client's PINGs; zero turns the policy off.
    pub min_interval: Duration,
    /// Counted once per connection closed for pinging too often.
    pub violations: Counter,
}

/// Plaintext connections (`--insecure`).
pub fn plain(
    listener: TcpListener,
    accept: Accept,
) -> impl Stream<Item = io::Result<Policed<Counted>>> + use<> {
    let pings = accept.pings.clone();
    accepted(listener, accept).map(move |(conn, peer)| Ok(Policed::new(conn, peer, pings.clone())))
}

/// TLS connections. Handshakes run concurrently, each bounded by
/// [`cdn_common::tls::HANDSHAKE_TIMEOUT`], so a slow or silent client never
/// holds up the next one; failed handshakes are logged and dropped. The
/// accept loop and the handshakes are tasks of `accept.tasks`: the loop
/// ends when the server stops taking connections, handshakes in progress
/// when `accept.stop` is cancelled.
pub fn tls(
    listener: TcpListener,
    accept: Accept,
    acceptor: TlsAcceptor,
) -> impl Stream<Item = io::Result<Policed<TlsStream<Counted>>>> + use<> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let (pings, tasks, stop) = (
        accept.pings.clone(),
        accept.tasks.clone(),
        accept.stop.clone(),
    );
    let handshakes = tasks.clone();
    tasks.spawn(async move {
        let conns = accepted(listener, accept);
        futures::pin_mut!(conns);
        loop {
            // Ends when the server stops taking connections (it drops the
            // stream); the server's own shutdown signal comes first.
            let next = tokio::select! {
                _ = tx.closed() => return,
                c = conns.next() => c,
            };
            let Some((conn, peer)) = next else { return };
            let (tx, acceptor, pings, stop) =
                (tx.clone(), acceptor.clone(), pings.clone(), stop.clone());
            handshakes.spawn(async move {
                let shake = tokio::select! {
                    _ = stop.cancelled() => return,
                    s = tokio::time::timeout(
                        cdn_common::tls::HANDSHAKE_TIMEOUT,
                        acceptor.accept(conn),
                    ) => s,
                };
                match shake {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(Policed::new(stream, peer, pings))).await;
                    }
                    Ok(Err(e)) => debug!(peer = ?peer, error = %e, "TLS handshake failed"),
                    Err(_) => debug!(peer = ?peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The server side of TLS: the master's certificate chain and key; client
/// certificates checked against `client_ca_pem` but optional at this
/// layer (an enrolling agent has none yet; the gate requires one for
/// every call but `Enroll`); ALPN `h2`.
pub fn tls_acceptor(
    chain_pem: &str,
    key_pem: &str,
    client_ca_pem: &str,
) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(provider());
    let chain = cdn_common::tls::pem_certs(chain_pem).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => "no private key in the key file".to_string(),
        e => format!("private key: {e}"),
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in cdn_common::tls::pem_certs(client_ca_pem).map_err(|e| e.to_string())? {
        roots.add(ca).map_err(|e| format!("client CA: {e}"))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| format!("client certificate verifier: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("server certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    // The master's order of cipher suites decides, whatever a client
    // prefers (see [`provider`]).
    config.ignore_client_order = true;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// ring's suites with AES-128-GCM/SHA-256 first. ring's own order puts
/// AES-256-GCM/SHA-384 first, whose SHA-384 has no CPU instructions (SHA-NI
/// covers SHA-256 only): its key schedule and transcript hashing were 6 %
/// of the master's CPU in a 15,000-agent connect storm, and every byte an
/// exec session relays is decrypted and encrypted again here. AES-128-GCM
/// is TLS 1.3's mandatory suite; the others stay allowed, after it.
fn provider() -> rustls::crypto::CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    p
}

/// Accepted TCP connections with the socket options applied. Accept errors
/// (for example too many open files) are logged and retried, never fatal.
fn accepted(
    listener: TcpListener,
    accept: Accept,
) -> impl Stream<Item = (Counted, Option<SocketAddr>)> {
    futures::stream::unfold((listener, accept), |(listener, accept)| async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let sock = socket2::SockRef::from(&stream);
                    if let Err(e) = sock
                        .set_tcp_nodelay(true)
                        .and_then(|_| sock.set_send_buffer_size(accept.send_buffer))
                        .and_then(|_| sock.set_recv_buffer_size(accept.recv_buffer))
                    {
                        warn!(error = %e, "cannot set socket options on an accepted connection");
                    }
                    let conn = Counted::new(stream, accept.open.clone());
                    return Some(((conn, Some(peer)), (listener, accept)));
                }
                Err(e) => {
                    warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

/// An accepted connection, counted in `grpc_connections_active` while it
/// lives; to tonic (and to TLS) it is the TCP stream it wraps.
pub struct Counted {
    inner: TcpStream,
    open: Gauge,
}

impl Counted {
    fn new(inner: TcpStream, open: Gauge) -> Self {
        open.inc();
        Self { inner, open }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl tonic::transport::server::Connected for Counted {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// HTTP/2 frame types and flags (RFC 9113 §6) the policy looks at.
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const CONTINUATION: u8 = 0x9;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const FRAME_HEAD_LEN: usize = 9;
/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, sent by the client before its frames.
const CLIENT_PREFACE_LEN: usize = 24;
/// GOAWAY debug data, as gRFC A8 names it.
const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// One frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHead {
    kind: u8,
    flags: u8,
    stream: u32,
}

/// Follows frame boundaries in one direction of an HTTP/2 byte stream.
#[derive(Debug, Default)]
struct Frames {
    /// Preface bytes still to skip.
    preface: usize,
    head: [u8; FRAME_HEAD_LEN],
    /// Bytes of `head` filled.
    have: usize,
    /// Payload bytes of the current frame still to come.
    payload: usize,
    /// A header block (HEADERS/PUSH_PROMISE + CONTINUATION) is not finished:
    /// no other frame may come between its frames.
    in_header_block: bool,
}

impl Frames {
    fn client() -> Self {
        Self {
            preface: CLIENT_PREFACE_LEN,
            ..Self::default()
        }
    }

    /// Whether another frame may be written here.
    fn at_boundary(&self) -> bool {
        self.preface == 0 && self.have == 0 && self.payload == 0 && !self.in_header_block
    }

    /// Consumes `bytes`, calling `seen` for every complete frame header.
    fn feed(&mut self, mut bytes: &[u8], mut seen: impl FnMut(FrameHead)) {
        while !bytes.is_empty() {
            let skip = if self.preface > 0 {
                let n = self.preface.min(bytes.len());
                self.preface -= n;
                n
            } else if self.payload > 0 {
                let n = self.payload.min(bytes.len());
                self.payload -= n;
                n
            } else {
                let n = (FRAME_HEAD_LEN - self.have).min(bytes.len());
                self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                self.have += n;
                if self.have == FRAME_HEAD_LEN {
                    let h = self.head;
                    self.have = 0;
                    self.payload = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                    let head = FrameHead {
                        kind: h[3],
                        flags: h[4],
                        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                    };
                    if matches!(head.kind, HEADERS | PUSH_PROMISE | CONTINUATION) {
                        self.in_header_block = head.flags & FLAG_END_HEADERS == 0;
                    }
                    seen(head);
                }
                n
            };
            bytes = &bytes[skip..];
        }
    }
}

/// The frame headers (type, flags, stream id) the connection layer reads
/// in a client's HTTP/2 byte stream (preface first) that arrives in
/// `chunks`, and whether the stream ends between frames. The reader sees
/// the bytes in reads of any size; this is its entry point for the fuzz
/// target, which checks that any split reads the same frames.
pub fn client_frame_heads<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<(u8, u8, u32)>, bool) {
    let mut frames = Frames::client();
    let mut heads = Vec::new();
    for chunk in chunks {
        frames.feed(chunk, |h| heads.push((h.kind, h.flags, h.stream)));
    }
    (heads, frames.at_boundary())
}

/// The ping-strike count of one connection (grpc-go's rules): a PING
/// sooner than the minimum interval after the previous one is a strike;
/// the master sending headers or data clears the strikes (a client may
/// ping in answer to activity); more than [`MAX_PING_STRIKES`] ends it.
#[derive(Debug)]
struct Strikes {
    min_interval: Duration,
    last: Option<Instant>,
    count: u32,
    clear: bool,
}

impl Strikes {
    /// Records a PING at `now`; true when the client is over the limit.
    fn ping(&mut self, now: Instant) -> bool {
        if self.min_interval.is_zero() {
            return false;
        }
        if std::mem::take(&mut self.clear) {
            self.count = 0;
        }
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < self.min_interval)
        {
            self.count += 1;
        }
        self.last = Some(now);
        self.count > MAX_PING_STRIKES
    }
}

/// Where the GOAWAY of a misbehaving client stands.
#[derive(Debug)]
enum GoAway {
    None,
    /// To be written at the next frame boundary of hyper's output; bytes
    /// already written.
    Pending(Vec<u8>, usize),
    /// Written; flush, then end the connection.
    Written,
    /// Reads see end of stream, so hyper closes the connection.
    Closed,
}

/// A connection under the PING policy; to tonic it is the stream it wraps.
pub struct Policed<S> {
    inner: S,
    peer: Option<SocketAddr>,
    reads: Frames,
    writes: Frames,
    strikes: Strikes,
    goaway: GoAway,
    violations: Counter,
}

impl<S> Policed<S> {
    fn new(inner: S, peer: Option<SocketAddr>, policy: PingPolicy) -> Self {
        Self {
            inner,
            peer,
            reads: Frames::client(),
            writes: Frames::default(),
            strikes: Strikes {
                min_interval: policy.min_interval,
                last: None,
                count: 0,
                clear: false,
            },
            goaway: GoAway::None,
            violations: policy.violations,
        }
    }
}

/// GOAWAY `ENHANCE_YOUR_CALM` with debug data `too_many_pings`, last
/// stream 0. The connection is closed right after it, so none of the
/// client's streams will complete; and only streams above the last stream
/// id receive the GOAWAY's reason in hyper's client (the others would see
/// a broken pipe), which is how an agent learns to ping less.
fn goaway_frame() -> Vec<u8> {
    let last_stream: u32 = 0;
    let len = (8 + TOO_MANY_PINGS.len()) as u32;
    let mut f = Vec::with_capacity(FRAME_HEAD_LEN + len as usize);
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.extend_from_slice(&[GOAWAY, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&last_stream.to_be_bytes());
    f.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
    f.extend_from_slice(TOO_MANY_PINGS);
    f
}

impl<S: AsyncWrite + Unpin> Policed<S> {
    /// Writes a pending GOAWAY if hyper's output is between frames, then
    /// flushes it and marks the connection closed.
    fn poll_goaway(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.goaway {
                GoAway::Pending(frame, done) if self.writes.at_boundary() => {
                    let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &frame[*done..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *done += n;
                    if *done == frame.len() {
                        self.goaway = GoAway::Written;
                    }
                }
                GoAway::Written => {
                    ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
                    self.goaway = GoAway::Closed;
                    // hyper reads again and sees the end.
                    cx.waker().wake_by_ref();
                }
                _ => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for Policed<S> {
    type ConnectInfo = S::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Policed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(this.goaway, GoAway::Closed) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let now = Instant::now();
        let strikes = &mut this.strikes;
        let mut over = false;
        this.reads.feed(&buf.filled()[before..], |f| {
            if f.kind == PING && f.flags & FLAG_ACK == 0 {
                over |= strikes.ping(now);
            }
        });
        if over && matches!(this.goaway, GoAway::None) {
            warn!(
                peer = ?this.peer,
                min_interval = %cdn_common::duration::short(this.strikes.min_interval),
                "client pings more often than grpc.keepalive.min_ping_interval allows; sending GOAWAY too_many_pings and closing the connection"
            );
            this.violations.inc();
            this.goaway = GoAway::Pending(goaway_frame(), 0);
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Policed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_goaway(cx))?;
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        let strikes = &mut this.strikes;
        this.writes.feed(&buf[..n], |f| {
            if matches!(f.kind, HEADERS | DATA) {
                strikes.clear = true;
            }
        });
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_goaway(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_master_picks_aes_128_even_for_a_client_that_prefers_aes_256() {
        let dir = tempfile::tempdir().unwrap();
        let (pki, _) =
            crate::pki::Pki::load_or_create(dir.path(), &["localhost".to_string()]).unwrap();
        let (chain, key) = pki.server_identity();
        let acceptor = tls_acceptor(chain, key, pki.ca_pem()).unwrap();
        let mut client_provider = rustls::crypto::ring::default_provider();
        assert_eq!(
            client_provider.cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
            "ring's own first choice"
        );
        client_provider.cipher_suites.truncate(2);
        let mut roots = rustls::RootCertStore::empty();
        for ca in cdn_common::tls::pem_certs(pki.ca_pem()).unwrap() {
            roots.add(ca).unwrap();
        }
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(client_provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let (a, b) = tokio::io::duplex(64 * 1024);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let (server, client) = tokio::join!(acceptor.accept(a), connector.connect(name, b));
        let (server, client) = (server.unwrap(), client.unwrap());
        for suite in [
            server.get_ref().1.negotiated_cipher_suite(),
            client.get_ref().1.negotiated_cipher_suite(),
        ] {
            assert_eq!(
                suite.map(|s| s.suite()),
                Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
            );
        }
        // Nothing of ring's is dropped, only reordered.
        assert_eq!(
            provider().cipher_suites.len(),
            rustls::crypto::ring::default_provider().cipher_suites.len()
        );
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frame_heads_are_found_across_any_split() {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(0x4, 0, 0, &[0; 6]));
        bytes.extend(frame(HEADERS, 0, 1, &[1, 2, 3]));
        bytes.extend(frame(CONTINUATION, FLAG_END_HEADERS, 1, &[4]));
        bytes.extend(frame(PING, 0, 0, &[0; 8]));
        bytes.extend(frame(DATA, 1, 3, &[9; 100]));
        for chunk in [1, 2, 5, 9, 10, 64, bytes.len()] {
            let mut frames = Frames::client();
            let mut seen = Vec::new();
            let mut boundaries = 0;
            for piece in bytes.chunks(chunk) {
                frames.feed(piece, |h| seen.push((h.kind, h.stream)));
                boundaries += usize::from(frames.at_boundary());
            }
            assert_eq!(
                seen,
                [
                    (0x4, 0),
                    (HEADERS, 1),
                    (CONTINUATION, 1),
                    (PING, 0),
                    (DATA, 3)
                ],
                "chunks of {chunk}"
            );
            assert!(frames.at_boundary());
            assert!(boundaries >= 1);
        }
    }

    #[test]
    fn no_boundary_inside_a_header_block() {
        let mut frames = Frames::default();
        frames.feed(&frame(HEADERS, 0, 1, &[1]), |_| {});
        assert!(!frames.at_boundary(), "HEADERS without END_HEADERS");
        frames.feed(&frame(CONTINUATION, FLAG_END_HEADERS, 1, &[2]), |_| {});
        assert!(frames.at_boundary());
    }

    #[test]
    fn three_quick_pings_are_over_the_limit_and_activity_clears_strikes() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Strikes {
            min_interval: Duration::from_secs(5),
            last: None,
            count: 0,
            clear: false,
        };
        assert!(!s.ping(t0));
        assert!(!s.ping(t0 + ms(10)));
        assert!(!s.ping(t0 + ms(20)));
        s.clear = true;
        assert!(!s.ping(t0 + ms(30)), "data sent in between clears strikes");
        assert!(!s.ping(t0 + ms(40)));
        assert!(s.ping(t0 + ms(50)));
        let mut slow = Strikes {
            min_interval: Duration::from_secs(5),
            last: None,
            count: 0,
            clear: false,
        };
        for i in 0..10 {
            assert!(!slow.ping(t0 + Duration::from_secs(5 * i)));
        }
        slow.min_interval = Duration::ZERO;
        for i in 0..10 {
            assert!(!slow.ping(t0 + ms(i)), "policy off");
        }
    }

    #[test]
    fn goaway_frame_is_well_formed() {
        let f = goaway_frame();
        let mut frames = Frames::default();
        let mut seen = Vec::new();
        frames.feed(&f, |h| seen.push(h));
        assert_eq!(
            seen,
            [FrameHead {
                kind: GOAWAY,
                flags: 0,
                stream: 0
            }]
        );
        assert!(frames.at_boundary());
        assert_eq!(&f[9..13], &0u32.to_be_bytes());
        assert_eq!(&f[13..17], &ENHANCE_YOUR_CALM.to_be_bytes());
        assert_eq!(&f[17..], TOO_MANY_PINGS);
    }
}
