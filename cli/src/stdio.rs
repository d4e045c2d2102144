//! The raw byte streams of an exec session on the local side: the remote
//! command's output to local stdout and stderr, local stdin to the remote
//! command.
//!
//! Each is served by a thread of its own, started on first use (a command
//! with no output starts none): chunks pass by reference (`Bytes`), with
//! no copy and no hand-off through tokio's blocking pool per write, and a
//! local reader or writer that blocks never stops the session's runtime
//! (its timers, Ctrl-C, the connection).

use std::io::{Read, Write};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Chunks queued towards one local output.
const SINK_DEPTH: usize = 8;

/// Which local output a [`Sink`] writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
}

/// Local stdout or stderr, written by its own thread.
pub struct Sink {
    to: Output,
    queue: Option<mpsc::Sender<Bytes>>,
    /// The writer's end: Ok once all was written, or why it stopped.
    done: Option<oneshot::Receiver<std::io::Result<()>>>,
}

/// Why a [`Sink`] stopped taking output.
#[derive(Debug)]
pub struct Closed(pub std::io::Error);

impl Sink {
    /// A sink for `to`; its thread starts with the first chunk.
    pub fn new(to: Output) -> Self {
        Self {
            to,
            queue: None,
            done: None,
        }
    }

    /// Queues `chunk`, waiting while the writer is [`SINK_DEPTH`] chunks
    /// behind (backpressure to the session). Fails once the output is
    /// closed (the local reader went away) or cannot be written.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), Closed> {
        if self.queue.is_none() {
            self.start()?;
        }
        let Some(queue) = &self.queue else {
            return Err(Closed(std::io::ErrorKind::BrokenPipe.into()));
        };
        if queue.send(chunk).await.is_ok() {
            return Ok(());
        }
        self.queue = None;
        Err(Closed(
            self.finish()
                .await
                .err()
                .unwrap_or_else(|| std::io::ErrorKind::BrokenPipe.into()),
        ))
    }

    /// Waits until everything queued is written; the first error if any.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        self.queue = None;
        match self.done.take() {
            Some(done) => done.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    fn start(&mut self) -> Result<(), Closed> {
        let (tx, mut rx) = mpsc::channel::<Bytes>(SINK_DEPTH);
        let (done_tx, done_rx) = oneshot::channel();
        let to = self.to;
        let name = match to {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
        };
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let result = (|| {
                    while let Some(chunk) = rx.blocking_recv() {
                        match to {
                            Output::Stdout => {
                                let mut out = std::io::stdout().lock();
                                out.write_all(&chunk)?;
                                out.flush()?;
                            }
                            Output::Stderr => std::io::stderr().lock().write_all(&chunk)?,
                        }
                    }
                    Ok(())
                })();
                let _ = done_tx.send(result);
            })
            .map_err(Closed)?;
        self.queue = Some(tx);
        self.done = Some(done_rx);
        Ok(())
    }
}

/// One read of local stdin: a chunk, or the end (EOF or an error).
pub type Input = Option<Bytes>;

/// Whether local stdin is `/dev/null` (`< /dev/null`, `nohup`, cron, most
/// scripts): then it ends at once, and no thread need wait on it.
pub fn stdin_is_dev_null() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return false;
    };
    match (
        std::fs::File::from(fd).metadata(),
        std::fs::metadata("/dev/null"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino() && a.rdev() == b.rdev(),
        _ => false,
    }
}

/// Reads local stdin on a thread of its own in chunks of at most
/// `chunk_bytes`, each handed to `send`; after EOF (or a read error)
/// `send(None)` is called once. Stops when `send` returns false. The
/// thread may stay blocked in a read when the session ends first; it does
/// not keep the process alive.
pub fn read_stdin<F>(chunk_bytes: usize, mut send: F) -> std::io::Result<()>
where
    F: FnMut(Input) -> bool + Send + 'static,
{
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut input = std::io::stdin().lock();
            loop {
                let mut buf = vec![0u8; chunk_bytes];
                match input.read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Ok(0) | Err(_) => {
                        send(None);
                        return;
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        if !send(Some(Bytes::from(buf))) {
                            return;
                        }
                    }
                }
            }
        })
        .map(drop)
}
