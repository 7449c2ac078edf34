//! Sending mail: the addresses each user may send as, and the outbox of messages
//! accepted by the submission endpoint and waiting for a connector to relay them.
//!
//! A message enters the outbox in one transaction with its body (held once, in
//! `message_bodies`) and its envelope; only then does the submission endpoint answer
//! 250, so an accepted message survives any crash after.

use uuid::Uuid;

use super::{Result, Store, StoreError};

/// A message the submission endpoint accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: Uuid,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub size: i64,
    pub state: String,
    pub sha256: Vec<u8>,
}

/// An address as kept: trimmed, in lower case, with one `@` between two non-empty
/// parts.
pub fn normalise_address(address: &str) -> Option<String> {
    let a = address.trim().to_lowercase();
    let (local, domain) = a.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    ok.then_some(a)
}

impl Store {
    /// Store API: lets `user` send as `address`. An address belongs to one user of a
    /// tenant.
    pub async fn add_user_address(&self, tenant: Uuid, user: Uuid, address: &str) -> Result<()> {
        let address = normalise_address(address)
            .ok_or_else(|| StoreError::Invalid(format!("{address:?} is not an e-mail address")))?;
        let c = self.client().await?;
        let n = c
            .execute(
                "INSERT INTO user_addresses (tenant_id, user_id, address) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, address) DO UPDATE SET address = EXCLUDED.address
                 WHERE user_addresses.user_id = $2",
                &[&tenant, &user, &address],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "{address} belongs to another user of the tenant"
            )));
        }
        Ok(())
    }

    /// Store API: `user` may no longer send as `address`. False if they could not.
    pub async fn remove_user_address(
        &self,
        tenant: Uuid,
        user: Uuid,
        address: &str,
    ) -> Result<bool> {
        let address = normalise_address(address).unwrap_or_default();
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM user_addresses WHERE tenant_id = $1 AND user_id = $2 AND address = $3",
            &[&tenant, &user, &address],
        )
        .await?
            > 0)
    }

    /// The addresses `user` may send as, sorted.
    pub async fn user_addresses(&self, tenant: Uuid, user: Uuid) -> Result<Vec<String>> {
        let rows = self
            .read(
                "SELECT address FROM user_addresses WHERE tenant_id = $1 AND user_id = $2
                 ORDER BY address",
                &[&tenant, &user],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Messages `user` handed to the outbox in the last hour (the sending limit).
    pub async fn sent_last_hour(&self, tenant: Uuid, user: Uuid) -> Result<i64> {
        let rows = self
            .read(
                "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND user_id = $2
                   AND created_at > now() - interval '1 hour'",
                &[&tenant, &user],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| r.get(0)))
    }

    /// Store API: puts a message and its envelope in the outbox, in one transaction,
    /// and announces it. Returns its id.
    pub async fn queue_submission(
        &self,
        tenant: Uuid,
        user: Uuid,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> Result<Uuid> {
        if rcpt_to.is_empty() {
            return Err(StoreError::Invalid("a message needs a recipient".into()));
        }
        let body = super::mail::Body::of(message);
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO message_bodies (tenant_id, sha256, size, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&tenant, &body.sha, &body.size, &message],
        )
        .await?;
        let id = Uuid::new_v4();
        tx.execute(
            "INSERT INTO outbox (tenant_id, id, user_id, mail_from, rcpt_to, body_sha256, size)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &tenant, &id, &user, &mail_from, &rcpt_to, &body.sha, &body.size,
            ],
        )
        .await?;
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&super::CHANGES_CHANNEL, &format!("{tenant}:{id}:outbox")],
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The outbox of a tenant, oldest first (admin and tests).
    pub async fn outbox(&self, tenant: Uuid) -> Result<Vec<Outgoing>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, mail_from, rcpt_to, size, state, body_sha256 FROM outbox
                 WHERE tenant_id = $1 ORDER BY created_at, id",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Outgoing {
                id: r.get(0),
                mail_from: r.get(1),
                rcpt_to: r.get(2),
                size: r.get(3),
                state: r.get(4),
                sha256: r.get(5),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_kept_in_lower_case_and_must_look_like_one() {
        assert_eq!(
            normalise_address(" Alice@Corp.Example "),
            Some("alice@corp.example".into())
        );
        assert_eq!(normalise_address("alice"), None);
        assert_eq!(normalise_address("@corp.example"), None);
        assert_eq!(normalise_address("a b@corp.example"), None);
        assert_eq!(normalise_address("<a@corp.example>"), None);
    }
}
