//! HTTP Basic authentication for DAV clients: `alice@acme` and an app password.
//!
//! Clients send Basic on every request, and argon2id is slow on purpose, so a
//! successful verification is remembered: the cache key is a SHA-256 of the password
//! together with the argon2 hash it matched. Every request still reads the user's
//! *live* hashes (one indexed query), so a revoked or rotated password stops matching
//! at once, and a cache entry never outlives the hash it was made for.
//!
//! Failures are slowed down per user and per client address: each failure in the last
//! minutes adds delay before the answer, up to a few seconds.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::verify_password;
use crate::store::{Store, StoreError};

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Login as used in URLs: `alice@acme`.
    pub login: String,
    /// Tenant id.
    pub tenant: Uuid,
    /// User id.
    pub user: Uuid,
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum DavAuthError {
    /// No or malformed credentials, or wrong ones.
    #[error("authentication required")]
    Unauthorized,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Remembered verifications and recent failures.
#[derive(Debug, Default)]
pub struct Authenticator {
    verified: Mutex<HashSet<[u8; 32]>>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    /// Failed attempts that were slowed down (exported as a metric).
    throttled: prometheus_client::metrics::counter::Counter,
}

/// How long failures are remembered.
const FAILURE_WINDOW: Duration = Duration::from_secs(300);
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

/// Splits `Basic base64(user:password)`.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let b64 = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Splits `alice@acme` (or `alice%40acme`) into user and tenant.
pub fn split_login(login: &str) -> Option<(String, String)> {
    let login = login.replace("%40", "@");
    let (user, tenant) = login.rsplit_once('@')?;
    (!user.is_empty() && !tenant.is_empty()).then(|| (user.to_string(), tenant.to_string()))
}

impl Authenticator {
    /// An authenticator counting slowed-down attempts in `throttled`.
    pub fn new(throttled: prometheus_client::metrics::counter::Counter) -> Self {
        Authenticator {
            throttled,
            ..Authenticator::default()
        }
    }

    /// Checks an `Authorization` header.
    pub async fn check(
        &self,
        store: &Store,
        header: Option<&str>,
        addr: Option<IpAddr>,
    ) -> Result<Principal, DavAuthError> {
        let parsed = header.and_then(parse_basic);
        let Some((login, password)) = parsed else {
            return Err(DavAuthError::Unauthorized);
        };
        let Some((user, tenant)) = split_login(&login) else {
            self.fail(&login, addr).await;
            return Err(DavAuthError::Unauthorized);
        };
        let creds = store.credentials(&tenant, &user).await?;
        let ok = match &creds {
            Some(c) => self.matches(&password, &c.hashes).await,
            None => false,
        };
        match (ok, creds) {
            (true, Some(c)) => {
                self.forgive(&login, addr);
                Ok(Principal {
                    login: format!("{user}@{tenant}"),
                    tenant: c.tenant,
                    user: c.user,
                })
            }
            _ => {
                self.fail(&login, addr).await;
                Err(DavAuthError::Unauthorized)
            }
        }
    }

    async fn matches(&self, password: &str, hashes: &[String]) -> bool {
        for hash in hashes {
            let key = cache_key(password, hash);
            if self
                .verified
                .lock()
                .map(|v| v.contains(&key))
                .unwrap_or(false)
            {
                return true;
            }
        }
        for hash in hashes {
            let (p, h) = (password.to_string(), hash.clone());
            let ok = tokio::task::spawn_blocking(move || verify_password(&p, &h))
                .await
                .unwrap_or(false);
            if ok {
                if let Ok(mut v) = self.verified.lock() {
                    if v.len() >= MAX_CACHE {
                        v.clear();
                    }
                    v.insert(cache_key(password, hash));
                }
                return true;
            }
        }
        false
    }

    fn keys(login: &str, addr: Option<IpAddr>) -> Vec<String> {
        let mut k = vec![format!("user:{}", login.to_lowercase())];
        if let Some(a) = addr {
            k.push(format!("addr:{a}"));
        }
        k
    }

    /// Records a failure and waits the delay it earns.
    async fn fail(&self, login: &str, addr: Option<IpAddr>) {
        let mut worst = 0;
        if let Ok(mut f) = self.failures.lock() {
            let now = Instant::now();
            f.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_WINDOW);
            for k in Self::keys(login, addr) {
                let e = f.entry(k).or_insert((0, now));
                e.0 += 1;
                e.1 = now;
                worst = worst.max(e.0);
            }
        }
        let delay = delay_for(worst);
        if !delay.is_zero() {
            self.throttled.inc();
        }
        tokio::time::sleep(delay).await;
    }

    fn forgive(&self, login: &str, addr: Option<IpAddr>) {
        if let Ok(mut f) = self.failures.lock() {
            for k in Self::keys(login, addr) {
                f.remove(&k);
            }
        }
    }
}

/// The delay after `n` recent failures: none for the first two, then doubling from
/// 250 ms up to [`MAX_DELAY`].
pub fn delay_for(n: u32) -> Duration {
    if n <= 2 {
        return Duration::ZERO;
    }
    let ms = 250u64.saturating_mul(1 << (n - 3).min(10));
    Duration::from_millis(ms).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_and_logins() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice@acme:p:w")
        );
        assert_eq!(parse_basic(&h), Some(("alice@acme".into(), "p:w".into())));
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(
            split_login("alice@acme"),
            Some(("alice".into(), "acme".into()))
        );
        assert_eq!(
            split_login("alice%40acme"),
            Some(("alice".into(), "acme".into()))
        );
        assert_eq!(split_login("alice"), None);
        assert_eq!(split_login("@acme"), None);
    }

    #[test]
    fn failures_slow_down_up_to_a_bound() {
        assert_eq!(delay_for(1), Duration::ZERO);
        assert_eq!(delay_for(3), Duration::from_millis(250));
        assert_eq!(delay_for(4), Duration::from_millis(500));
        assert_eq!(delay_for(40), MAX_DELAY);
    }

    #[test]
    fn cache_keys_bind_password_and_hash() {
        assert_ne!(cache_key("pw", "h1"), cache_key("pw", "h2"));
        assert_ne!(cache_key("pw1", "h"), cache_key("pw2", "h"));
    }
}
