//! Accepting connections so that no caller can hold the door shut.
//!
//! Both ports (HTTP and the connector gRPC port) take their connections from
//! [`accept`], which
//! - counts open connections, in all and per client address, and closes a new one at
//!   once when either bound is reached, so the listen backlog keeps moving and file
//!   descriptors are never exhausted;
//! - completes TLS handshakes in tasks of their own, each with a deadline: a caller
//!   that connects and never says hello costs one task until the deadline, and never
//!   delays anyone else's handshake;
//! - hands out [`Conn`]s that close themselves when no byte has moved either way for
//!   the idle timeout (a stalled reader, a silent HTTP/2 connection).
//!
//! Slots are given back when a [`Conn`] is dropped, whatever ends it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, warn};

use crate::metrics::Metrics;

/// The bounds of one port.
#[derive(Debug, Clone, Copy)]
pub struct PortLimits {
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one address.
    pub max_per_address: usize,
    /// Time for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time without a byte either way before the connection is closed.
    pub idle_timeout: Duration,
}

/// Which port, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// DAV, health, metrics.
    Http,
    /// The connector link.
    Grpc,
    /// IMAP for remote mail clients.
    Imap,
    /// SMTP submission.
    Submission,
}

impl Port {
    fn as_str(self) -> &'static str {
        match self {
            Port::Http => "http",
            Port::Grpc => "grpc",
            Port::Imap => "imap",
            Port::Submission => "submission",
        }
    }
}

/// Open connections per client address, shared by a port's admissions.
type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A connection's place in the counts; given back on drop.
struct Admission {
    _slot: OwnedSemaphorePermit,
    addr: IpAddr,
    per_address: PerAddress,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Ok(mut map) = self.per_address.lock()
            && let Some(n) = map.get_mut(&self.addr)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.addr);
            }
        }
    }
}

/// Counts a new connection from `addr`, or says which bound refuses it.
fn admit(
    slots: &Arc<Semaphore>,
    per_address: &PerAddress,
    max_per_address: usize,
    addr: IpAddr,
) -> Result<Admission, &'static str> {
    let slot = slots.clone().try_acquire_owned().map_err(|_| "total")?;
    let mut map = per_address.lock().map_err(|_| "total")?;
    let n = map.entry(addr).or_insert(0);
    if *n >= max_per_address {
        return Err("per_address");
    }
    *n += 1;
    Ok(Admission {
        _slot: slot,
        addr,
        per_address: per_address.clone(),
    })
}

/// The transport under a [`Conn`].
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection, TLS already done, that closes itself when idle.
pub struct Conn {
    io: Io,
    /// The client's address.
    pub addr: SocketAddr,
    idle_timeout: Duration,
    last_activity: Instant,
    idle: Pin<Box<Sleep>>,
    _admission: Admission,
}

impl Conn {
    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("addr", &self.addr).finish()
    }
}

impl Conn {
    /// Called when the transport has nothing to give or take: fails the connection
    /// once it has been silent for the idle timeout, else arranges to be woken then.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let deadline = self.last_activity + self.idle_timeout;
            if Instant::now() >= deadline {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                ));
            }
            if self.idle.deadline() != deadline {
                self.idle.as_mut().reset(deadline);
            }
            if self.idle.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        match r {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.last_activity = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => self.check_idle(cx).map(Err),
            other => other,
        }
    }
}

impl Conn {
    /// What a write returned, noting activity or checking for idleness.
    fn wrote(
        &mut self,
        r: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.last_activity = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => self.check_idle(cx).map(Err),
            other => other,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, data),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        };
        self.wrote(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        self.wrote(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        let local_addr = match &self.io {
            Io::Plain(s) => s.local_addr().ok(),
            Io::Tls(s) => s.get_ref().0.local_addr().ok(),
        };
        tonic::transport::server::TcpConnectInfo {
            local_addr,
            remote_addr: Some(self.addr),
        }
    }
}

/// Accepts connections on `listener` until the receiver is dropped, and passes on
/// those admitted, after their TLS handshake when `tls` is given.
pub fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    port: Port,
    limits: PortLimits,
    metrics: Arc<Metrics>,
) -> mpsc::Receiver<Conn> {
    let (tx, rx) = mpsc::channel::<Conn>(256);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let per_address: PerAddress = Arc::default();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            let (tcp, addr) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or memory: wait a little rather than spin.
                    warn!(port = port.as_str(), error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let admission = match admit(&slots, &per_address, limits.max_per_address, addr.ip()) {
                Ok(a) => a,
                Err(bound) => {
                    metrics.connection_refused(port.as_str(), bound);
                    debug!(port = port.as_str(), address = %addr, bound, "connection refused: too many open");
                    drop(tcp);
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let tx = tx.clone();
            let tls = tls.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let io = match tls {
                    None => Io::Plain(tcp),
                    Some(acceptor) => {
                        match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp))
                            .await
                        {
                            Ok(Ok(s)) => Io::Tls(Box::new(s)),
                            Ok(Err(e)) => {
                                metrics.connection_refused(port.as_str(), "tls_handshake");
                                debug!(address = %addr, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                metrics.connection_refused(port.as_str(), "tls_timeout");
                                debug!(address = %addr, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                let now = Instant::now();
                let conn = Conn {
                    io,
                    addr,
                    idle_timeout: limits.idle_timeout,
                    last_activity: now,
                    idle: Box::pin(tokio::time::sleep_until(now + limits.idle_timeout)),
                    _admission: admission,
                };
                let _ = tx.send(conn).await;
            });
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(idle: Duration) -> PortLimits {
        PortLimits {
            max_connections: 8,
            max_per_address: 8,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: idle,
        }
    }

    #[tokio::test]
    async fn a_silent_connection_fails_after_the_idle_timeout_and_an_active_one_does_not() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut conns = accept(
            listener,
            None,
            Port::Http,
            limits(Duration::from_millis(300)),
            Metrics::shared(),
        );
        // Active: a byte every 100 ms keeps it open past the timeout.
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut server = conns.recv().await.unwrap();
        let talker = tokio::spawn(async move {
            for _ in 0..8 {
                client.write_all(b"x").await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            client
        });
        let mut buf = [0u8; 1];
        for _ in 0..8 {
            server.read_exact(&mut buf).await.unwrap();
        }
        let _client = talker.await.unwrap();
        // Silent: the next read fails with TimedOut instead of waiting forever.
        let e = server.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_connection_over_the_cap_is_closed_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Metrics::shared();
        let mut conns = accept(
            listener,
            None,
            Port::Http,
            PortLimits {
                max_per_address: 1,
                ..limits(Duration::from_secs(60))
            },
            metrics.clone(),
        );
        let _first = TcpStream::connect(addr).await.unwrap();
        let _held = conns.recv().await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let n = second.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "closed without a byte");
        assert_eq!(
            metrics
                .refused
                .get_or_create(&crate::metrics::Refusal {
                    port: "http".into(),
                    reason: "per_address".into()
                })
                .get(),
            1
        );
    }

    #[test]
    fn admissions_are_bounded_and_given_back() {
        let slots = Arc::new(Semaphore::new(3));
        let per: PerAddress = Arc::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = admit(&slots, &per, 2, a).unwrap();
        let _second = admit(&slots, &per, 2, a).unwrap();
        assert_eq!(admit(&slots, &per, 2, a).err(), Some("per_address"));
        let _third = admit(&slots, &per, 2, b).unwrap();
        assert_eq!(admit(&slots, &per, 2, b).err(), Some("total"));
        drop(first);
        assert!(
            admit(&slots, &per, 2, a).is_ok(),
            "a slot comes back on drop"
        );
        assert_eq!(per.lock().unwrap().len(), 2);
    }
}
