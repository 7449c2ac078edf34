//! Tenants, users, app passwords and connectors.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Result, Store, StoreError};

/// A tenant (an organisation).
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    /// Its id.
    pub id: Uuid,
    /// Its unique name, the part after `@` in logins.
    pub name: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// A user of a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Its id.
    pub id: Uuid,
    /// Login name within the tenant.
    pub name: String,
    /// Number of app passwords that are not revoked.
    pub app_passwords: i64,
}

/// An app password's record (the password itself is never stored).
#[derive(Debug, Clone, Serialize)]
pub struct AppPassword {
    /// Its id (for revoke).
    pub id: Uuid,
    /// What it is for ("phone", "laptop").
    pub label: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An enrolled connector, as `admin connector list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Connector {
    /// Its id (the token's subject).
    pub id: Uuid,
    /// Its name within the tenant.
    pub name: String,
    /// Expiry of its current token.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When a stream of it was last active.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The version it announced.
    pub version: String,
    /// The address it connected from.
    pub address: String,
}

fn conflict_on_unique(e: tokio_postgres::Error, what: String) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what)
    } else {
        StoreError::from(e)
    }
}

impl Store {
    /// Adds a tenant.
    pub async fn add_tenant(&self, name: &str) -> Result<Tenant> {
        validate_name("tenant", name)?;
        let c = self.client().await?;
        let row = c
            .query_one(
                "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id, name, created_at",
                &[&Uuid::new_v4(), &name],
            )
            .await
            .map_err(|e| conflict_on_unique(e, format!("tenant {name:?} already exists")))?;
        Ok(Tenant {
            id: row.get(0),
            name: row.get(1),
            created_at: row.get(2),
        })
    }

    /// Lists tenants by name.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, name, created_at FROM tenants ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Tenant {
                id: r.get(0),
                name: r.get(1),
                created_at: r.get(2),
            })
            .collect())
    }

    /// The id of the tenant called `name`.
    pub async fn tenant_id(&self, name: &str) -> Result<Uuid> {
        let c = self.client().await?;
        c.query_opt("SELECT id FROM tenants WHERE name = $1", &[&name])
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("tenant {name:?}")))
    }

    /// The name of tenant `id`.
    pub async fn tenant_name(&self, id: Uuid) -> Result<String> {
        let c = self.client().await?;
        c.query_opt("SELECT name FROM tenants WHERE id = $1", &[&id])
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))
    }

    /// Adds a user with a first app password whose argon2id `hash` is given.
    pub async fn add_user(&self, tenant: Uuid, name: &str, hash: &str) -> Result<Uuid> {
        validate_name("user", name)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let id = Uuid::new_v4();
        tx.execute(
            "INSERT INTO users (tenant_id, id, name) VALUES ($1, $2, $3)",
            &[&tenant, &id, &name],
        )
        .await
        .map_err(|e| conflict_on_unique(e, format!("user {name:?} already exists")))?;
        tx.execute(
            "INSERT INTO app_passwords (tenant_id, id, user_id, label, hash) VALUES ($1, $2, $3, 'initial', $4)",
            &[&tenant, &Uuid::new_v4(), &id, &hash],
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Revokes every live app password of a user and adds `hash` as the only one.
    /// Remembered verifications of the old passwords stop matching at once, because
    /// authentication always checks against the live hashes.
    pub async fn rotate_password(&self, tenant: Uuid, name: &str, hash: &str) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let user: Uuid = tx
            .query_opt(
                "SELECT id FROM users WHERE tenant_id = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("user {name:?}")))?;
        tx.execute(
            "UPDATE app_passwords SET revoked_at = now() WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
            &[&tenant, &user],
        )
        .await?;
        tx.execute(
            "INSERT INTO app_passwords (tenant_id, id, user_id, label, hash) VALUES ($1, $2, $3, 'rotated', $4)",
            &[&tenant, &Uuid::new_v4(), &user, &hash],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds another app password to a user (one per device); returns its id.
    pub async fn add_password(
        &self,
        tenant: Uuid,
        name: &str,
        label: &str,
        hash: &str,
    ) -> Result<Uuid> {
        let user = self.user_id(tenant, name).await?;
        let c = self.client().await?;
        let id = Uuid::new_v4();
        c.execute(
            "INSERT INTO app_passwords (tenant_id, id, user_id, label, hash) VALUES ($1, $2, $3, $4, $5)",
            &[&tenant, &id, &user, &label, &hash],
        )
        .await?;
        Ok(id)
    }

    /// A user's app passwords (never the passwords: id, label, dates).
    pub async fn list_passwords(&self, tenant: Uuid, name: &str) -> Result<Vec<AppPassword>> {
        let user = self.user_id(tenant, name).await?;
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, label, created_at, revoked_at FROM app_passwords WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at",
                &[&tenant, &user],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AppPassword {
                id: r.get(0),
                label: r.get(1),
                created_at: r.get(2),
                revoked_at: r.get(3),
            })
            .collect())
    }

    /// Revokes one app password of a user.
    pub async fn revoke_password(&self, tenant: Uuid, name: &str, id: Uuid) -> Result<()> {
        let user = self.user_id(tenant, name).await?;
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE app_passwords SET revoked_at = now() WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND revoked_at IS NULL",
                &[&tenant, &user, &id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("live app password {id}")));
        }
        Ok(())
    }

    /// Lists a tenant's users.
    pub async fn list_users(&self, tenant: Uuid) -> Result<Vec<User>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT u.id, u.name, count(p.id) FILTER (WHERE p.revoked_at IS NULL)
                 FROM users u LEFT JOIN app_passwords p ON p.tenant_id = u.tenant_id AND p.user_id = u.id
                 WHERE u.tenant_id = $1 GROUP BY u.id, u.name ORDER BY u.name",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| User {
                id: r.get(0),
                name: r.get(1),
                app_passwords: r.get(2),
            })
            .collect())
    }

    /// The id of user `name` in `tenant`.
    pub async fn user_id(&self, tenant: Uuid, name: &str) -> Result<Uuid> {
        let c = self.client().await?;
        c.query_opt(
            "SELECT id FROM users WHERE tenant_id = $1 AND name = $2",
            &[&tenant, &name],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::NotFound(format!("user {name:?}")))
    }

    /// The argon2id hashes of a user's live app passwords.
    pub async fn password_hashes(&self, tenant: Uuid, user: Uuid) -> Result<Vec<String>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT hash FROM app_passwords WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
                &[&tenant, &user],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Creates or re-enrols connector `name` with a fresh token id; the previous token
    /// (if any) stops working. Returns (connector id, token id).
    pub async fn enroll_connector(
        &self,
        tenant: Uuid,
        name: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(Uuid, Uuid)> {
        validate_name("connector", name)?;
        let c = self.client().await?;
        let token_id = Uuid::new_v4();
        let row = c
            .query_one(
                "INSERT INTO connectors (tenant_id, id, name, token_id, token_expires_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, name) DO UPDATE
                   SET token_id = EXCLUDED.token_id, token_expires_at = EXCLUDED.token_expires_at, revoked_at = NULL
                 RETURNING id",
                &[&tenant, &Uuid::new_v4(), &name, &token_id, &expires_at],
            )
            .await?;
        Ok((row.get(0), token_id))
    }

    /// Revokes connector `name`: its token stops working at once.
    pub async fn revoke_connector(&self, tenant: Uuid, name: &str) -> Result<()> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE connectors SET revoked_at = now(), token_id = NULL WHERE tenant_id = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("connector {name:?}")));
        }
        Ok(())
    }

    /// True when `token_id` is the current, unrevoked token of the connector.
    pub async fn connector_token_valid(
        &self,
        tenant: Uuid,
        connector: Uuid,
        token_id: Uuid,
    ) -> Result<bool> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT 1 FROM connectors WHERE tenant_id = $1 AND id = $2 AND token_id = $3
                   AND revoked_at IS NULL AND (token_expires_at IS NULL OR token_expires_at > now())",
                &[&tenant, &connector, &token_id],
            )
            .await?;
        Ok(row.is_some())
    }

    /// Records that a connector is connected (for `connector list`).
    pub async fn touch_connector(
        &self,
        tenant: Uuid,
        connector: Uuid,
        version: &str,
        address: &str,
    ) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE connectors SET last_seen_at = now(), version = $3, address = $4 WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &connector, &version, &address],
        )
        .await?;
        Ok(())
    }

    /// Lists a tenant's connectors.
    pub async fn list_connectors(&self, tenant: Uuid) -> Result<Vec<Connector>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, name, token_expires_at, revoked_at, last_seen_at, version, address
                 FROM connectors WHERE tenant_id = $1 ORDER BY name",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Connector {
                id: r.get(0),
                name: r.get(1),
                token_expires_at: r.get(2),
                revoked_at: r.get(3),
                last_seen_at: r.get(4),
                version: r.get(5),
                address: r.get(6),
            })
            .collect())
    }

    /// A gateway-wide setting, created with `init` if absent (atomically, so that
    /// replicas starting at once agree on one value).
    pub async fn setting_or_init(&self, key: &str, init: &str) -> Result<String> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &init],
        )
        .await?;
        let row = c
            .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
            .await?;
        Ok(row.get(0))
    }
}

/// Names of tenants, users and connectors: letters, digits, `.`, `_`, `-`; no `@`
/// (it separates user from tenant in logins) and no `/` (they appear in URLs).
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} name {name:?} must be 1-64 characters of letters, digits, '.', '_' or '-'"
        )))
    }
}
