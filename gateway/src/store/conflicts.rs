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
        Ok(rows
            .iter()
            .map(|r| Conflict {
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
            })
            .collect())
    }
}
