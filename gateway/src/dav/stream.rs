//! Multistatus answers sent while they are produced.
//!
//! A PROPFIND or REPORT over a large collection is written page by page
//! ([`crate::store::dav::ItemPages`]) and each piece is sent as soon as it is large enough,
//! so the answer's memory is one page whatever the collection's size, and the client
//! sees the first bytes at once instead of waiting for the whole answer to be built.
//! (A peer's 3,827-event REPORT took longer than its clients' timeout: PITFALLS.md.)
//!
//! The producer runs in the request's task until its first piece is full; an answer
//! that ends before that is sent whole, with a length, and an error before that point
//! is an ordinary HTTP error. A larger answer's producer then goes on in a task of its
//! own while the body is sent. Once the first piece has gone, the status (207) is on the wire: a later
//! error aborts the body, and the client sees a broken answer and asks again.

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::response::Response;
use postern_davxml::Writer;
use tokio::sync::mpsc;
use tracing::{Instrument, warn};

use super::{DavError, multistatus};

/// Items read from the store per page.
pub const PAGE: i64 = 500;

/// Bytes gathered before a piece is sent.
const PIECE: usize = 64 * 1024;

/// What the producer's task tells the handler.
enum Piece {
    /// Part of the body; more follows.
    More(Bytes),
    /// The rest of the body.
    Last(Bytes),
    /// Producing failed.
    Failed(DavError),
}

/// Why producing stopped early.
pub enum Stop {
    /// The client went away: nothing to do.
    Gone,
    /// An error, sent as the answer if nothing was sent yet.
    Failed(DavError),
}

impl<E: Into<DavError>> From<E> for Stop {
    fn from(e: E) -> Self {
        Stop::Failed(e.into())
    }
}

/// The body of a multistatus being produced: write into [`Members::w`], call
/// [`Members::flush`] after each member or page, and stop when [`Members::full`]
/// says the answer reached its bound (`--max-answer-bytes`): the producer then ends
/// it with a 507 for the request URI, as RFC 6578 §3.6 does for a truncated sync.
pub struct Members {
    tx: mpsc::Sender<Piece>,
    /// The answer's writer.
    pub w: Writer,
    /// Bytes already sent.
    sent: usize,
    /// The most bytes the answer may hold.
    limit: usize,
}

impl Members {
    /// Sends what was written if it makes a piece.
    pub async fn flush(&mut self) -> Result<(), Stop> {
        if self.w.pending() < PIECE {
            return Ok(());
        }
        let piece = Bytes::from(self.w.take());
        self.sent += piece.len();
        self.tx
            .send(Piece::More(piece))
            .await
            .map_err(|_| Stop::Gone)
    }

    /// True once the answer holds as many bytes as it may: the producer adds a 507
    /// for the request URI and stops.
    pub fn full(&self) -> bool {
        self.sent + self.w.pending() >= self.limit
    }

    async fn finish(self) -> Result<(), Stop> {
        let rest = Bytes::from(self.w.finish());
        self.tx
            .send(Piece::Last(rest))
            .await
            .map_err(|_| Stop::Gone)
    }
}

/// A 207 produced by `produce`, sent whole when it is small and in pieces when not,
/// holding at most `limit` bytes (give or take one page) if the producer checks
/// [`Members::full`].
pub async fn members<F, Fut>(limit: usize, produce: F) -> Result<Response, DavError>
where
    F: FnOnce(Members) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Members, Stop>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(2);
    let fail = tx.clone();
    let members = Members {
        tx,
        w: Writer::multistatus(),
        sent: 0,
        limit,
    };
    let mut producing = Box::pin(
        async move {
            let ended = match produce(members).await {
                Ok(m) => m.finish().await,
                Err(stop) => Err(stop),
            };
            if let Err(Stop::Failed(e)) = ended {
                warn!(error = %e, "multistatus answer failed while it was produced");
                let _ = fail.send(Piece::Failed(e)).await;
            }
        }
        .in_current_span(),
    );
    // Produce right here until the first piece is out: a small answer (the no-change
    // sync every client repeats) never leaves the request's task.
    let (first, finished) = tokio::select! {
        biased;
        piece = rx.recv() => (piece, false),
        () = &mut producing => (rx.recv().await, true),
    };
    let first = match first {
        Some(Piece::Last(whole)) => return Ok(multistatus(whole)),
        Some(Piece::Failed(e)) => return Err(e),
        Some(Piece::More(first)) => first,
        None => return Err(DavError::Internal("the answer ended without a body")),
    };
    // A large answer: the rest is produced by its own task while the body is sent.
    if !finished {
        tokio::spawn(producing);
    }
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await? {
            Piece::More(b) | Piece::Last(b) => Some((Ok(b), rx)),
            Piece::Failed(e) => Some((Err(std::io::Error::other(e.to_string())), rx)),
        }
    });
    let body = futures::StreamExt::chain(
        futures::stream::once(async move { Ok::<_, std::io::Error>(first) }),
        rest,
    );
    Ok(multistatus(Body::from_stream(body)))
}
