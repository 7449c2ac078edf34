//! Password verification on a small, fixed pool of threads.
//!
//! An argon2id verification is slow on purpose and takes about 19 MiB while it runs.
//! Run on tokio's blocking pool, a flood of wrong passwords starts hundreds of them at
//! once: memory grows by gigabytes, and the allocator keeps most of it afterwards
//! (every thread that hashed keeps its own arena). Here verifications run on `n`
//! threads made at start, so at most `n` run at once and at most `n` arenas ever hold
//! their memory. A caller waits for a free thread up to a deadline and is then told
//! [`Busy`], which the DAV layer answers 503 with Retry-After.
//!
//! Unknown logins pay the same cost as known ones: [`Pool::verify`] with no hashes
//! verifies against [`DUMMY_HASH`], so the time a wrong password takes does not tell
//! whether the login exists.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

use crate::auth::verify_password;

/// An argon2id hash with the default parameters (as [`crate::auth::hash_password`]
/// makes them) that no password is known to match: a random salt and a random
/// output. Verified against when a login has no hash, so that failing takes as long
/// for an unknown login as for a known one.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$TGxRQ1k4a0FXcG9tN3pOeQ$7f0VJuT0xQvAXq6ZlEwxHN0LSrj7TqU0d7Oq5kC1YJQ";

/// Every verification slot stayed busy for the whole wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password-verification slot is busy")]
pub struct Busy;

struct Job {
    password: String,
    hashes: Vec<String>,
    answer: oneshot::Sender<Option<usize>>,
}

/// The pool.
pub struct Pool {
    slots: Arc<Semaphore>,
    wait: Duration,
    jobs: mpsc::SyncSender<Job>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("wait", &self.wait).finish()
    }
}

impl Pool {
    /// `threads` verification threads; a caller waits at most `wait` for one.
    pub fn new(threads: usize, wait: Duration) -> Self {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let _ = job.answer.send(matching(&job.password, &job.hashes));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-verification thread");
            }
        }
        Pool {
            slots: Arc::new(Semaphore::new(threads)),
            wait,
            jobs: tx,
        }
    }

    /// The index of the hash `password` matches, if any. With no hashes, a dummy is
    /// verified (and never matches), at the same cost.
    pub async fn verify(&self, password: &str, hashes: &[String]) -> Result<Option<usize>, Busy> {
        let permit = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let (answer, result) = oneshot::channel();
        let job = Job {
            password: password.to_string(),
            hashes: hashes.to_vec(),
            answer,
        };
        // A permit means a thread is free (or about to be): the channel has room.
        self.jobs.try_send(job).map_err(|_| Busy)?;
        let matched = result.await.map_err(|_| Busy)?;
        drop(permit);
        Ok(matched)
    }
}

/// Runs on a pool thread.
fn matching(password: &str, hashes: &[String]) -> Option<usize> {
    if hashes.is_empty() {
        let _ = verify_password(password, DUMMY_HASH);
        return None;
    }
    hashes.iter().position(|h| verify_password(password, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash_with_default_parameters() {
        let made = crate::auth::hash_password("x").unwrap();
        let params = |h: &str| h.split('$').nth(3).map(str::to_string);
        assert_eq!(params(DUMMY_HASH), params(&made));
        assert!(argon2::PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn verifies_and_bounds_the_wait() {
        let hash = crate::auth::hash_password("right").unwrap();
        let pool = Pool::new(1, Duration::from_secs(30));
        assert_eq!(
            pool.verify("right", std::slice::from_ref(&hash)).await,
            Ok(Some(0))
        );
        assert_eq!(
            pool.verify("wrong", std::slice::from_ref(&hash)).await,
            Ok(None)
        );
        assert_eq!(pool.verify("wrong", &[]).await, Ok(None));

        // One thread, no patience: while it is busy, a second caller is told so.
        let pool = Arc::new(Pool::new(1, Duration::from_millis(1)));
        let busy = pool.slots.clone().acquire_owned().await.unwrap();
        assert_eq!(pool.verify("right", &[hash]).await, Err(Busy));
        drop(busy);
    }
}
