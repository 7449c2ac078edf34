//! Logins of remote clients, whatever they speak: `alice@acme` and an app password,
//! sent as HTTP Basic by DAV clients, as LOGIN or AUTHENTICATE PLAIN by IMAP clients
//! and as AUTH PLAIN or LOGIN by SMTP submission clients. One [`Authenticator`]
//! serves them all, so throttling and limits are the same whichever door is used.
//!
//! DAV clients send Basic on every request, and argon2id is slow on purpose, so a
//! successful verification is remembered: the cache key is a SHA-256 of the password
//! together with the argon2 hash it matched. Every request still reads the user's
//! *live* hashes (one indexed query), so a revoked or rotated password stops matching
//! at once, and a cache entry never outlives the hash it was made for.
//!
//! Verifications run on the bounded [`crate::passwords::Pool`]: a flood of wrong
//! passwords waits for a slot (and is answered 503 when none frees up in time) instead
//! of growing memory. An unknown login is verified against a dummy hash, so a wrong
//! password costs the same whether or not the login exists.
//!
//! Failures are slowed down per login and per client address: each failure in the
//! last minutes adds delay, up to a few seconds, and the delay is waited *before* the
//! verification, holding no slot. A password already verified (in the cache) passes
//! without delay, so guessing at a login never slows down or locks out its owner. The failure table keeps a fixed-size digest per
//! login or address, never the login itself, and holds at most a set number of
//! entries, so neither long logins nor many of them grow it without bound.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_davproto::credentials::{parse_basic, split_login};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::passwords::{Busy, Pool};
use crate::store::{Store, StoreError};

/// Who a request or a session comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Login as used in URLs: `alice@acme`.
    pub login: String,
    /// Tenant id.
    pub tenant: Uuid,
    /// User id.
    pub user: Uuid,
}

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No or malformed credentials, or wrong ones.
    #[error("authentication required")]
    Unauthorized,
    /// Every verification slot stayed busy (503 with Retry-After).
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A fixed-size key of the failure table: a digest of a login or an address.
type FailureKey = [u8; 32];

/// Recent failures per login and per address, bounded in entries.
#[derive(Debug, Default)]
struct Failures {
    entries: HashMap<FailureKey, (u32, Instant)>,
    max: usize,
}

impl Failures {
    /// Counts a failure of each key now; returns the highest count.
    fn record(&mut self, keys: &[FailureKey], now: Instant) -> u32 {
        if self.entries.len() + keys.len() > self.max {
            self.entries
                .retain(|_, (_, at)| now.duration_since(*at) < FAILURE_WINDOW);
        }
        if self.entries.len() + keys.len() > self.max {
            // Still full of recent failures: keep those that already slow a caller
            // down, then, if that is not enough, start over.
            self.entries.retain(|_, (n, _)| *n > FREE_FAILURES);
            if self.entries.len() + keys.len() > self.max {
                self.entries.clear();
            }
        }
        let mut worst = 0;
        for k in keys {
            let e = self.entries.entry(*k).or_insert((0, now));
            if now.duration_since(e.1) >= FAILURE_WINDOW {
                e.0 = 0;
            }
            e.0 += 1;
            e.1 = now;
            worst = worst.max(e.0);
        }
        worst
    }

    /// The highest recent failure count of the keys.
    fn count(&self, keys: &[FailureKey], now: Instant) -> u32 {
        keys.iter()
            .filter_map(|k| self.entries.get(k))
            .filter(|(_, at)| now.duration_since(*at) < FAILURE_WINDOW)
            .map(|(n, _)| *n)
            .max()
            .unwrap_or(0)
    }

    fn forgive(&mut self, keys: &[FailureKey]) {
        for k in keys {
            self.entries.remove(k);
        }
    }
}

/// Remembered verifications and recent failures.
pub struct Authenticator {
    verified: Mutex<HashSet<[u8; 32]>>,
    failures: Mutex<Failures>,
    pool: Pool,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

/// How long failures are remembered.
const FAILURE_WINDOW: Duration = Duration::from_secs(300);
/// Failures that cost no delay.
const FREE_FAILURES: u32 = 2;
/// The most delay added to a failing attempt.
const MAX_DELAY: Duration = Duration::from_secs(4);
/// Cache entries kept before the cache is cleared (bounds memory).
const MAX_CACHE: usize = 100_000;

fn cache_key(password: &str, hash: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(hash.as_bytes());
    h.update([0]);
    h.update(password.as_bytes());
    h.finalize().into()
}

/// The failure-table keys of a login and an address.
fn failure_keys(login: &str, addr: Option<IpAddr>) -> Vec<FailureKey> {
    let digest = |kind: &str, value: &str| -> FailureKey {
        let mut h = Sha256::new();
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(value.as_bytes());
        h.finalize().into()
    };
    let mut k = vec![digest("login", &login.to_lowercase())];
    if let Some(a) = addr {
        k.push(digest("address", &a.to_string()));
    }
    k
}

impl Authenticator {
    /// An authenticator with the pool and table sizes of `limits`.
    pub fn new(limits: &Limits, metrics: Arc<Metrics>) -> Self {
        Authenticator {
            verified: Mutex::default(),
            failures: Mutex::new(Failures {
                entries: HashMap::new(),
                max: limits.failed_login_entries.max(2),
            }),
            pool: Pool::new(limits.verifications(), limits.password_wait),
            metrics,
        }
    }

    /// Checks an HTTP `Authorization` header (Basic).
    pub async fn check(
        &self,
        store: &Store,
        header: Option<&str>,
        addr: Option<IpAddr>,
    ) -> Result<Principal, LoginError> {
        let Some((login, password)) = header.and_then(parse_basic) else {
            return Err(LoginError::Unauthorized);
        };
        self.login(store, &login, &password, addr).await
    }

    /// Checks a login (`alice@acme`) and its app password.
    pub async fn login(
        &self,
        store: &Store,
        login: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<Principal, LoginError> {
        let (login, password) = (login.to_string(), password.to_string());
        let keys = failure_keys(&login, addr);
        let (creds, name) = match split_login(&login) {
            Some((user, tenant)) => (
                store.credentials(&tenant, &user).await?,
                format!("{user}@{tenant}"),
            ),
            None => (None, String::new()),
        };
        let hashes = creds.as_ref().map(|c| c.hashes.as_slice()).unwrap_or(&[]);
        // A password verified before passes at once: someone guessing at this login
        // neither slows its owner down nor locks them out.
        let ok = if creds.is_some() && self.cached(&password, hashes) {
            true
        } else {
            // The earned delay, before the verification and holding no slot: a
            // guesser's requests wait here, not in the verification pool.
            let earlier = self
                .failures
                .lock()
                .map(|f| f.count(&keys, Instant::now()))
                .unwrap_or(0);
            let delay = delay_for(earlier + 1);
            if !delay.is_zero() {
                self.metrics.auth_throttled.inc();
                tokio::time::sleep(delay).await;
            }
            match self.pool.verify(&password, hashes).await {
                Ok(matched) => {
                    self.metrics.password_verifications.inc();
                    if let Some(i) = matched {
                        self.remember(&password, &hashes[i]);
                    }
                    matched.is_some()
                }
                Err(busy) => {
                    self.metrics.auth_busy.inc();
                    return Err(busy.into());
                }
            }
        };
        match (ok, creds) {
            (true, Some(c)) => {
                // The address that got in is forgiven; failures at the login itself
                // age out on their own, so a guesser elsewhere is not reset by its
                // owner's success.
                if let Ok(mut f) = self.failures.lock() {
                    f.forgive(&keys[1..]);
                }
                Ok(Principal {
                    login: name,
                    tenant: c.tenant,
                    user: c.user,
                })
            }
            _ => {
                if let Ok(mut f) = self.failures.lock() {
                    f.record(&keys, Instant::now());
                }
                Err(LoginError::Unauthorized)
            }
        }
    }

    fn cached(&self, password: &str, hashes: &[String]) -> bool {
        let Ok(v) = self.verified.lock() else {
            return false;
        };
        hashes.iter().any(|h| v.contains(&cache_key(password, h)))
    }

    fn remember(&self, password: &str, hash: &str) {
        if let Ok(mut v) = self.verified.lock() {
            if v.len() >= MAX_CACHE {
                v.clear();
            }
            v.insert(cache_key(password, hash));
        }
    }

    /// Entries in the failure table (for tests of its bound).
    pub fn failure_entries(&self) -> usize {
        self.failures.lock().map(|f| f.entries.len()).unwrap_or(0)
    }
}

/// The delay before the `n`th attempt in a row to fail: none for the first two, then
/// doubling from 250 ms up to [`MAX_DELAY`].
pub fn delay_for(n: u32) -> Duration {
    if n <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let ms = 250u64.saturating_mul(1 << (n - 3).min(10));
    Duration::from_millis(ms).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_slow_down_up_to_a_bound() {
        assert_eq!(delay_for(1), Duration::ZERO);
        assert_eq!(delay_for(3), Duration::from_millis(250));
        assert_eq!(delay_for(4), Duration::from_millis(500));
        assert_eq!(delay_for(40), MAX_DELAY);
    }

    #[test]
    fn the_failure_table_is_bounded_whatever_the_logins() {
        let mut f = Failures {
            entries: HashMap::new(),
            max: 1_000,
        };
        let now = Instant::now();
        let addr: IpAddr = "10.1.2.3".parse().unwrap();
        for i in 0..50_000 {
            // 200 KB logins once grew the table by hundreds of megabytes.
            let login = format!("{i}{}", "x".repeat(if i < 10 { 200_000 } else { 10 }));
            f.record(&failure_keys(&login, Some(addr)), now);
            assert!(f.entries.len() <= 1_000);
        }
        // The address that kept failing is still remembered and slowed down.
        let keys = failure_keys("someone-new", Some(addr));
        assert!(f.count(&keys, now) > FREE_FAILURES);
    }

    #[test]
    fn cache_keys_bind_password_and_hash() {
        assert_ne!(cache_key("pw", "h1"), cache_key("pw", "h2"));
        assert_ne!(cache_key("pw1", "h"), cache_key("pw2", "h"));
    }
}
