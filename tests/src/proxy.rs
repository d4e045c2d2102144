//! A small fault-injecting TCP proxy for the fault suite: listens on a
//! loopback port and forwards every connection to `upstream`, with a
//! delay per chunk, a bandwidth cap, stalls (bytes held, connections kept)
//! and connection resets (RST, as a dropped link or a middlebox does), all
//! changed while it runs.
//!
//! `let proxy = Proxy::start(master.addr);` then point an agent at
//! `proxy.addr`; `proxy.set_delay(..)`, `proxy.set_rate(..)`,
//! `proxy.stall(true)`, `proxy.reset_all()`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the link behaves now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// Added before each chunk is forwarded, in each direction.
    pub delay: Duration,
    /// Bytes per second in each direction; 0 = unlimited.
    pub rate: u64,
    /// Nothing is forwarded while set; connections stay open.
    pub stalled: bool,
}

/// Largest chunk forwarded at once (a bandwidth cap sleeps per chunk).
const CHUNK: usize = 16 * 1024;

/// A running proxy; it stops (and resets its connections) when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    link: watch::Sender<Link>,
    /// Bumped by [`Proxy::reset_all`]: every connection open then is reset.
    resets: watch::Sender<u64>,
    accepted: Arc<Mutex<u64>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free loopback port.
    pub fn start(upstream: SocketAddr) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let (link, link_rx) = watch::channel(Link::default());
        let (resets, resets_rx) = watch::channel(0u64);
        let accepted = Arc::new(Mutex::new(0));
        let count = accepted.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                *count.lock().expect("count lock") += 1;
                let (link, mut resets) = (link_rx.clone(), resets_rx.clone());
                resets.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        reset(&client);
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = pump(cr, sw, link.clone());
                    let down = pump(sr, cw, link);
                    // A reset drops both pumps, and with them the
                    // sockets, whose zero linger makes the close an RST.
                    tokio::select! {
                        _ = resets.changed() => {}
                        _ = async { tokio::join!(up, down) } => {}
                    }
                });
            }
        });
        Self {
            addr,
            link,
            resets,
            accepted,
            runtime: Some(runtime),
        }
    }

    /// Changes how the link behaves (new and open connections alike).
    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }

    /// Delay added to every chunk.
    pub fn set_delay(&self, delay: Duration) {
        self.link.send_modify(|l| l.delay = delay);
    }

    /// Bandwidth cap in bytes per second per direction (0 = none).
    pub fn set_rate(&self, bytes_per_second: u64) {
        self.link.send_modify(|l| l.rate = bytes_per_second);
    }

    /// Holds every byte (connections stay open) until called with false.
    pub fn stall(&self, stalled: bool) {
        self.link.send_modify(|l| l.stalled = stalled);
    }

    /// Resets (RST) every connection open now; new ones are accepted.
    pub fn reset_all(&self) {
        self.resets.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        *self.accepted.lock().expect("count lock")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Makes closing `s` send an RST instead of a FIN.
fn reset(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

/// Copies `from` to `to` under `link` until either side ends.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut link: watch::Receiver<Link>,
) {
    // Closing with RST when the task is cancelled (a reset): a lost link,
    // not an orderly end.
    reset(to.as_ref());
    reset(from.as_ref());
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = loop {
            let now = *link.borrow_and_update();
            if !now.stalled {
                break now;
            }
            if link.changed().await.is_err() {
                return;
            }
        };
        if !now.delay.is_zero() {
            tokio::time::sleep(now.delay).await;
        }
        if now.rate > 0 {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / now.rate as f64)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
