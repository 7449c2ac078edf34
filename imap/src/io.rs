//! The bytes of an IMAP connection: between a socket (plain TCP or TLS) and one of
//! imap-next's state machines (client or server), which do no I/O of their own (they
//! ask for input and hand out output).
//!
//! imap-next ships a driver of its own (`imap_next::stream::Stream`), but it reads
//! into a buffer that never grows past 64 bytes (and decrypts TLS 128 bytes at a
//! time): a 300 MB import took over a million read calls. This one reads up to
//! [`READ_CHUNK`] bytes at a time. Like that driver, it writes and reads at once
//! while output is pending, so a server that answers while a long command (an APPEND
//! literal) is still being sent cannot deadlock the two.
//!
//! [`Connection::next`] is cancel-safe: bytes read are handed to the client before
//! the next await, and output not yet written stays queued, so a timeout around it
//! (IDLE's wait) loses nothing.

use imap_next::{Interrupt, Io, State};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Bytes read from the socket at most at once, by default: a client importing mail
/// reads large FETCH answers.
const READ_CHUNK: usize = 256 << 10;

/// A socket an IMAP session runs over.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Socket for T {}

/// One connection's socket, with what is waiting to be written.
pub struct Connection {
    read: ReadHalf<Box<dyn Socket>>,
    write: WriteHalf<Box<dyn Socket>>,
    buf: Box<[u8]>,
    out: Vec<u8>,
    /// The state machine's first output is dropped, not written (see
    /// [`Connection::without_greeting`]).
    skip_first_output: bool,
}

/// Why a connection stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError<E> {
    #[error("the peer closed the connection")]
    Closed,
    #[error("the peer sent more than one command may hold")]
    TooLarge,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0:?}")]
    State(E),
}

impl Connection {
    pub fn new(socket: impl Socket + 'static) -> Connection {
        Connection::with_buffer(socket, READ_CHUNK)
    }

    /// A connection that reads at most `bytes` at once (a server with many
    /// connections, each mostly idle, keeps this small).
    pub fn with_buffer(socket: impl Socket + 'static, bytes: usize) -> Connection {
        let (read, write) = tokio::io::split(Box::new(socket) as Box<dyn Socket>);
        Connection {
            read,
            write,
            buf: vec![0; bytes.max(1)].into_boxed_slice(),
            out: Vec::new(),
            skip_first_output: false,
        }
    }

    /// Drops the state machine's first output instead of writing it: imap-next's
    /// server always starts with a greeting, and after STARTTLS there must be none
    /// (RFC 9051 §6.2.1).
    pub fn without_greeting(mut self) -> Connection {
        self.skip_first_output = true;
        self
    }

    /// Writes out what is queued (a server's last answer before it closes).
    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.write.write_all(&self.out).await?;
        self.out.clear();
        self.write.flush().await
    }

    /// Writes what `state` has queued until `sent` says an event marks the end of
    /// it: a server answering a long command in parts sends each part before it
    /// makes the next, so the answer is never held whole. Stops early when nothing
    /// is left to send. What the peer sends meanwhile is read and handed to `state`
    /// for later (so a peer that writes before it reads cannot deadlock the two), at
    /// most `limit` bytes.
    pub async fn send_until<F: State>(
        &mut self,
        mut state: F,
        sent: impl Fn(&F::Event) -> bool,
        limit: usize,
    ) -> Result<(), ConnectionError<F::Error>> {
        let mut read = 0usize;
        loop {
            match state.next() {
                Ok(event) if sent(&event) => break,
                // Only the answers queued before ours can come first.
                Ok(_) => {}
                Err(Interrupt::Error(e)) => return Err(ConnectionError::State(e)),
                Err(Interrupt::Io(Io::Output(_))) if self.skip_first_output => {
                    self.skip_first_output = false;
                }
                Err(Interrupt::Io(Io::Output(bytes))) => {
                    self.out.extend_from_slice(&bytes);
                    while !self.out.is_empty() {
                        tokio::select! {
                            n = self.write.write(&self.out) => {
                                let n = n?;
                                if n == 0 {
                                    return Err(ConnectionError::Closed);
                                }
                                self.out.drain(..n);
                            }
                            n = self.read.read(&mut self.buf) => {
                                self.took(&mut state, n, &mut read, limit)?;
                            }
                        }
                    }
                }
                Err(Interrupt::Io(Io::NeedMoreInput)) => break,
            }
        }
        self.flush().await?;
        Ok(())
    }

    /// Hands the `n` bytes just read into the buffer to `state`, counted against
    /// `limit` (the bytes read so far are `read`).
    fn took<F: State>(
        &self,
        state: &mut F,
        n: std::io::Result<usize>,
        read: &mut usize,
        limit: usize,
    ) -> Result<(), ConnectionError<F::Error>> {
        let n = n?;
        if n == 0 {
            return Err(ConnectionError::Closed);
        }
        *read += n;
        if *read > limit {
            return Err(ConnectionError::TooLarge);
        }
        state.enqueue_input(&self.buf[..n]);
        Ok(())
    }

    /// Drives `state` until its next event, reading and writing as it asks.
    pub async fn next<F: State>(
        &mut self,
        state: F,
    ) -> Result<F::Event, ConnectionError<F::Error>> {
        self.next_within(state, usize::MAX).await
    }

    /// Like [`Connection::next`], but fails with [`ConnectionError::TooLarge`] once
    /// more than `limit` bytes have been read without an event: a server bounds what
    /// one command may make it hold, whatever the literals it announces.
    pub async fn next_within<F: State>(
        &mut self,
        mut state: F,
        limit: usize,
    ) -> Result<F::Event, ConnectionError<F::Error>> {
        let mut read = 0usize;
        loop {
            match state.next() {
                Ok(event) => return Ok(event),
                Err(Interrupt::Error(e)) => return Err(ConnectionError::State(e)),
                Err(Interrupt::Io(Io::Output(_))) if self.skip_first_output => {
                    self.skip_first_output = false;
                }
                Err(Interrupt::Io(Io::Output(bytes))) => self.out.extend_from_slice(&bytes),
                Err(Interrupt::Io(Io::NeedMoreInput)) => {}
            }
            if self.out.is_empty() {
                let n = self.read.read(&mut self.buf).await;
                self.took(&mut state, n, &mut read, limit)?;
            } else {
                tokio::select! {
                    n = self.read.read(&mut self.buf) => {
                        self.took(&mut state, n, &mut read, limit)?;
                    }
                    n = self.write.write(&self.out) => {
                        let n = n?;
                        if n == 0 {
                            return Err(ConnectionError::Closed);
                        }
                        self.out.drain(..n);
                        if self.out.is_empty() {
                            self.write.flush().await?;
                        }
                    }
                }
            }
        }
    }
}
