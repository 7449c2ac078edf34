//! Versions that lost a conflict: listed by `admin conflicts`, kept until resolved.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Result, Store};

/// A kept losing version.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    /// Its id.
    pub id: Uuid,
    /// The collection.
    pub collection_id: Uuid,
    /// The item, if known.
    pub item_id: Option<Uuid>,
    /// UID of the item.
    pub uid: String,
    /// Which side's version lost.
    pub loser_side: String,
    /// The losing bytes (`None` for a deletion), as text.
    pub loser_content: Option<String>,
    /// The policy that decided.
    pub policy: String,
    /// Back-end href.
    pub backend_href: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// A conflict from the columns id, collection_id, item_id, uid, loser_side,
/// loser_content, policy, backend_href, created_at (in that order).
fn conflict_row(r: &tokio_postgres::Row) -> Conflict {
    Conflict {
        id: r.get(0),
        collection_id: r.get(1),
        item_id: r.get(2),
        uid: r.get(3),
        loser_side: r.get(4),
        loser_content: r
            .get::<_, Option<Vec<u8>>>(5)
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        policy: r.get(6),
        backend_href: r.get(7),
        created_at: r.get(8),
    }
}

impl Store {
    /// Unresolved conflicts of a tenant (or all tenants).
    pub async fn list_conflicts(&self, tenant: Option<Uuid>) -> Result<Vec<Conflict>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, collection_id, item_id, uid, loser_side, loser_content, policy, backend_href, created_at
                 FROM conflicts WHERE ($1::uuid IS NULL OR tenant_id = $1) AND resolved_at IS NULL
                 ORDER BY created_at",
                &[&tenant],
            )
            .await?;
        Ok(rows.iter().map(conflict_row).collect())
    }

    /// The losing bytes of a conflict, as kept (a message's 8-bit bytes untouched).
    pub async fn conflict_loser_bytes(&self, tenant: Uuid, id: Uuid) -> Result<Option<Vec<u8>>> {
        let rows = self
            .read(
                "SELECT loser_content FROM conflicts WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )
            .await?;
        Ok(rows.first().and_then(|r| r.get(0)))
    }
}

/// The item a conflict is about, as it is now on the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentItem {
    /// Its name in the collection.
    pub name: String,
    /// Its content now, as text (`None` when deleted).
    pub content: Option<String>,
}

impl Store {
    /// One conflict (any tenant) and its tenant.
    pub async fn conflict(&self, id: Uuid) -> Result<(Uuid, Conflict)> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT id, collection_id, item_id, uid, loser_side, loser_content, policy, backend_href, created_at, tenant_id
                 FROM conflicts WHERE id = $1",
                &[&id],
            )
            .await?
            .ok_or_else(|| super::StoreError::NotFound(format!("conflict {id}")))?;
        Ok((r.get(9), conflict_row(&r)))
    }

    /// The current state of the item a conflict is about.
    pub async fn conflict_item(
        &self,
        tenant: Uuid,
        conflict: &Conflict,
    ) -> Result<Option<CurrentItem>> {
        let Some(item) = conflict.item_id else {
            return Ok(None);
        };
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT name, CASE WHEN deleted THEN NULL ELSE content END FROM items
                 WHERE tenant_id = $1 AND collection_id = $2 AND id = $3",
                &[&tenant, &conflict.collection_id, &item],
            )
            .await?;
        Ok(row.map(|r| CurrentItem {
            name: r.get(0),
            content: r
                .get::<_, Option<Vec<u8>>>(1)
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        }))
    }

    /// Marks a conflict resolved.
    pub async fn mark_resolved(&self, tenant: Uuid, id: Uuid) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE conflicts SET resolved_at = now() WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &id],
        )
        .await?;
        Ok(())
    }
}

/// An item whose gateway change the back end refused, set aside.
#[derive(Debug, Clone, Serialize)]
pub struct SetAside {
    /// The item.
    pub item_id: Uuid,
    /// The collection.
    pub collection_id: Uuid,
    /// Its name in the collection.
    pub name: String,
    /// Its UID.
    pub uid: String,
    /// The refused change was a deletion.
    pub deletion: bool,
    /// The back end's HTTP status.
    pub status: i32,
    /// The start of the back end's answer.
    pub answer: String,
    /// When the back end refused it.
    pub refused_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Items set aside after a back-end refusal, of a tenant (or all tenants).
    pub async fn list_set_aside(&self, tenant: Option<Uuid>) -> Result<Vec<SetAside>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, collection_id, name, uid, deleted, COALESCE(refused_status, 0),
                        COALESCE(refused_answer, ''), refused_at
                 FROM items WHERE ($1::uuid IS NULL OR tenant_id = $1)
                   AND refused_seq IS NOT NULL AND refused_seq = pending_seq
                 ORDER BY refused_at",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SetAside {
                item_id: r.get(0),
                collection_id: r.get(1),
                name: r.get(2),
                uid: r.get(3),
                deletion: r.get(4),
                status: r.get(5),
                answer: r.get(6),
                refused_at: r.get(7),
            })
            .collect())
    }

    /// Hands a set-aside change out again (after the back end was fixed): clears the
    /// refusal and wakes the connector. Returns whether the item had one.
    pub async fn retry_set_aside(&self, item: Uuid) -> Result<bool> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "UPDATE items SET refused_seq = NULL, refused_status = NULL, refused_answer = NULL, refused_at = NULL
                 WHERE id = $1 AND refused_seq IS NOT NULL AND refused_seq = pending_seq
                 RETURNING tenant_id, collection_id",
                &[&item],
            )
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let (tenant, collection): (Uuid, Uuid) = (row.get(0), row.get(1));
        c.execute(
            "SELECT pg_notify($1, $2)",
            &[&super::CHANGES_CHANNEL, &format!("{tenant}:{collection}")],
        )
        .await?;
        Ok(true)
    }
}
