//! Authentication: connector tokens and app passwords.
//!
//! **Connector tokens** are JWTs (HS256) signed with the gateway's key, scoped to one
//! tenant and one connector, with an expiry and an id (`jti`). The database keeps the
//! one valid `jti` per connector, so `admin connector revoke` (or re-enrolling)
//! invalidates a token at once, whatever its expiry says.
//!
//! The signing key comes from `--signing-key-file`, or is generated on first start and
//! kept in the database so every replica shares it.
//!
//! **App passwords** are random strings shown once and stored as argon2id hashes.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// Why a connector token was refused. All map to gRPC UNAUTHENTICATED.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `authorization: Bearer` metadata.
    #[error("missing bearer token")]
    Missing,
    /// Bad signature, malformed, wrong algorithm or expired.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Revoked or replaced by a newer enrolment.
    #[error("token revoked")]
    Revoked,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// The store failed while checking.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The claims of a connector token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The connector's id.
    pub sub: Uuid,
    /// The tenant's id.
    pub tid: Uuid,
    /// The connector's name, for logs.
    pub name: String,
    /// Token id, checked against the database (revocation).
    pub jti: Uuid,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
}

/// Signs and verifies connector tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn from_secret(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.len() < 32 {
            return Err(AuthError::Invalid(
                "signing key must be at least 32 bytes".into(),
            ));
        }
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// The key from `file` if given (its bytes, trimmed), else the one kept in the
    /// database (generated on first use).
    pub async fn load(store: &Store, file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let secret = match file {
            Some(path) => {
                let raw = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("cannot read signing key file {}: {e}", path.display())
                })?;
                raw.trim_ascii().to_vec()
            }
            None => {
                let mut fresh = [0u8; 48];
                rand::rng().fill_bytes(&mut fresh);
                let init = base64::engine::general_purpose::STANDARD.encode(fresh);
                let stored = store.setting_or_init("token_signing_key", &init).await?;
                base64::engine::general_purpose::STANDARD.decode(stored)?
            }
        };
        Ok(Self::from_secret(&secret)?)
    }

    /// Issues a token.
    pub fn issue(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    /// Checks signature and expiry (not revocation: see [`verify_connector`]).
    pub fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })
    }
}

impl AuthError {
    /// What the caller is told: why, without the details of the libraries behind
    /// it (those go to the gateway's log).
    pub fn public(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing bearer token",
            AuthError::Invalid(_) => "invalid connector token",
            AuthError::Revoked => "connector token revoked; enrol the connector again",
            AuthError::Expired => "connector token expired; enrol the connector again",
            AuthError::Store(_) => "the gateway cannot check tokens right now; retry",
        }
    }
}

/// Verifies a connector token completely: signature, expiry, and that it is the
/// connector's current, unrevoked token.
pub async fn verify_connector(
    keys: &TokenKeys,
    store: &Store,
    token: &str,
) -> Result<Claims, AuthError> {
    let claims = keys.decode(token)?;
    if !store
        .connector_token_valid(claims.tid, claims.sub, claims.jti)
        .await?
    {
        return Err(AuthError::Revoked);
    }
    Ok(claims)
}

/// Enrols (or re-enrols) a connector and returns its token.
pub async fn enroll_connector(
    keys: &TokenKeys,
    store: &Store,
    tenant: &str,
    name: &str,
    ttl: std::time::Duration,
) -> anyhow::Result<(String, DateTime<Utc>)> {
    let tid = store.tenant_id(tenant).await?;
    let now = Utc::now();
    let expires = now + chrono::Duration::from_std(ttl)?;
    let (id, jti) = store.enroll_connector(tid, name, expires).await?;
    let claims = Claims {
        sub: id,
        tid,
        name: name.to_string(),
        jti,
        iat: now.timestamp(),
        exp: expires.timestamp(),
    };
    Ok((keys.issue(&claims)?, expires))
}

/// A new random app password: 24 characters from an unambiguous alphabet (~140 bits).
pub fn new_app_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The argon2id PHC string of a password.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Invalid(e.to_string()))
}

/// Checks a password against an argon2id PHC string (constant-time comparison inside).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_offset: i64) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            sub: Uuid::new_v4(),
            tid: Uuid::new_v4(),
            name: "hq".into(),
            jti: Uuid::new_v4(),
            iat: now,
            exp: now + exp_offset,
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_forgery_and_expiry() {
        let keys = TokenKeys::from_secret(&[7u8; 32]).unwrap();
        let c = claims(60);
        let token = keys.issue(&c).unwrap();
        assert_eq!(keys.decode(&token).unwrap().jti, c.jti);

        let other = TokenKeys::from_secret(&[8u8; 32]).unwrap();
        assert!(
            other.decode(&token).is_err(),
            "a token signed with another key is refused"
        );

        let expired = keys.issue(&claims(-5)).unwrap();
        assert!(
            keys.decode(&expired).is_err(),
            "an expired token is refused"
        );

        let mut tampered = token.clone();
        tampered.pop();
        assert!(keys.decode(&tampered).is_err());
        assert!(TokenKeys::from_secret(b"short").is_err());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let pw = new_app_password();
        assert_eq!(pw.len(), 24);
        let phc = hash_password(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password(&pw, "not a hash"));
    }
}
