//! Sources and collections: what each connector syncs, in which mode, and where it
//! stands (back-end state, cursor, last round).

use chrono::{DateTime, Utc};
use postern_core::model::{CollectionKind, ConflictPolicy, Mode};
use serde::Serialize;
use uuid::Uuid;

use super::{Result, Store, StoreError};

/// A source announced by a connector.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// Name from the connector's config.
    pub name: String,
    /// "caldav", "carddav", "imap", "smtp".
    pub kind: String,
    /// Owning user (already resolved within the connector's tenant).
    pub user_id: Uuid,
    /// Default mode.
    pub mode: Mode,
    /// Default conflict policy.
    pub conflict: ConflictPolicy,
}

/// A back-end collection reported by discovery.
#[derive(Debug, Clone)]
pub struct FoundCollection {
    /// Its path on the back end.
    pub backend_href: String,
    /// What it holds.
    pub kind: CollectionKind,
    /// Its display name.
    pub display_name: String,
    /// Its colour.
    pub color: String,
    /// A mailbox's SPECIAL-USE role.
    pub role: Option<postern_core::mail::Role>,
    /// A mailbox's hierarchy delimiter.
    pub delimiter: Option<String>,
}

/// A collection as assigned to a connector and shown by `admin status`.
#[derive(Debug, Clone, Serialize)]
pub struct Collection {
    /// Gateway id.
    pub id: Uuid,
    /// Source name.
    pub source: String,
    /// Owning user name.
    pub user: String,
    /// What it holds.
    pub kind: String,
    /// Path on the back end.
    pub backend_href: String,
    /// Display name.
    pub display_name: String,
    /// Sync mode.
    pub mode: String,
    /// Conflict policy.
    pub conflict: String,
    /// Why it is paused, if it is.
    pub paused_reason: Option<String>,
    /// Back-end resume point.
    pub backend_state: String,
    /// Journal sequence the connector has seen.
    pub cursor: i64,
    /// Last journal sequence.
    pub journal_head: i64,
    /// When the last round ended.
    pub last_round_at: Option<DateTime<Utc>>,
    /// The fencing token of the lease the last round held.
    pub last_round_token: i64,
    /// How it ended.
    pub last_outcome: String,
    /// Details of the last round.
    pub last_detail: String,
    /// Live items.
    pub items: i64,
    /// Gateway changes waiting for the back end.
    pub pending: i64,
    /// Conflicts not yet resolved.
    pub open_conflicts: i64,
    /// A mailbox's SPECIAL-USE role ("sent", "trash", ...).
    pub role: Option<String>,
    /// Items whose change the back end refused, set aside (not retried until they
    /// change again or an operator asks).
    pub set_aside: i64,
    /// Properties clients set, to carry to the back end.
    #[serde(skip)]
    pub props: ClientProps,
    /// Made by a client on the gateway; the connector is to create it on the back end.
    pub create_pending: bool,
    /// Deleted by a client on the gateway; the connector is to delete it on the back end.
    pub delete_pending: bool,
    /// A mailbox a client renamed: its new name, until the back end has it.
    pub rename_to: Option<String>,
    /// How far the running round got (or the last one, when `running` is false).
    pub progress: Option<Progress>,
}

/// A round's progress as its connector last reported it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Progress {
    /// "fetching" (reading items from the back end), "writing" (to the back end),
    /// "pushing" (to the gateway).
    pub phase: String,
    /// Items done in this phase.
    pub done: i64,
    /// Items in this phase.
    pub total: i64,
    /// When it was reported.
    pub at: DateTime<Utc>,
    /// True while the round has not reported its end yet (and reported progress in
    /// the last five minutes).
    pub running: bool,
}

const COLLECTION_SELECT: &str = "
    SELECT c.id, s.name, u.name, c.kind, c.backend_href, c.display_name, c.mode, c.conflict,
           c.paused_reason, c.backend_state, c.cursor, c.journal_head, c.last_round_at,
           c.last_outcome, c.last_detail,
           (SELECT count(*) FROM items i WHERE i.tenant_id = c.tenant_id AND i.collection_id = c.id AND NOT i.deleted),
           (SELECT count(*) FROM items i WHERE i.tenant_id = c.tenant_id AND i.collection_id = c.id AND i.pending_seq IS NOT NULL),
           (SELECT count(*) FROM conflicts f WHERE f.tenant_id = c.tenant_id AND f.collection_id = c.id AND f.resolved_at IS NULL),
           c.create_pending, c.delete_pending,
           c.progress_phase, c.progress_done, c.progress_total, c.progress_at, c.last_round_token,
           (SELECT count(*) FROM items i WHERE i.tenant_id = c.tenant_id AND i.collection_id = c.id
                AND i.refused_seq IS NOT NULL AND i.refused_seq = i.pending_seq),
           c.color, c.sort_order, c.description, c.calendar_timezone, c.components, c.dead_props,
           c.props_version, c.props_applied, c.role, c.rename_to
    FROM collections c
    JOIN sources s ON s.tenant_id = c.tenant_id AND s.id = c.source_id
    JOIN users u ON u.tenant_id = c.tenant_id AND u.id = c.user_id";

fn collection_from_row(r: &tokio_postgres::Row) -> Collection {
    Collection {
        id: r.get(0),
        source: r.get(1),
        user: r.get(2),
        kind: r.get(3),
        backend_href: r.get(4),
        display_name: r.get(5),
        mode: r.get(6),
        conflict: r.get(7),
        paused_reason: r.get(8),
        backend_state: r.get(9),
        cursor: r.get(10),
        journal_head: r.get(11),
        last_round_at: r.get(12),
        last_outcome: r.get(13),
        last_detail: r.get(14),
        items: r.get(15),
        pending: r.get(16),
        open_conflicts: r.get(17),
        create_pending: r.get(18),
        delete_pending: r.get(19),
        rename_to: r.get(35),
        last_round_token: r.get(24),
        set_aside: r.get(25),
        props: ClientProps {
            color: r.get(26),
            order: r.get(27),
            description: r.get(28),
            timezone: r.get(29),
            components: r
                .get::<_, String>(30)
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            dead: r
                .get::<_, serde_json::Value>(31)
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            version: r.get(32),
            applied: r.get(33),
        },
        role: r.get(34),
        progress: r.get::<_, Option<DateTime<Utc>>>(23).map(|at| {
            let last_round: Option<DateTime<Utc>> = r.get(12);
            Progress {
                phase: r.get(20),
                done: r.get(21),
                total: r.get(22),
                at,
                // A round that stopped reporting for minutes (its connector died) is
                // not shown as running forever.
                running: last_round.is_none_or(|l| l < at)
                    && Utc::now() - at < chrono::TimeDelta::minutes(5),
            }
        }),
    }
}

/// The properties clients set on a collection, and how far the back end has them.
#[derive(Debug, Clone, Default)]
pub struct ClientProps {
    /// Colour.
    pub color: String,
    /// Apple calendar order.
    pub order: Option<i32>,
    /// Description.
    pub description: String,
    /// Calendar time zone.
    pub timezone: String,
    /// Components a calendar holds.
    pub components: Vec<String>,
    /// Dead properties (`{ns}name`, markup).
    pub dead: Vec<(String, String)>,
    /// Grows with every client change.
    pub version: i64,
    /// The version the back end has.
    pub applied: i64,
}

/// A source as `admin source list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceRow {
    /// Its id.
    pub id: Uuid,
    /// Its tenant's name.
    pub tenant: String,
    /// The connector that announced it.
    pub connector: String,
    /// Its name in the connector's config.
    pub name: String,
    /// caldav | carddav | imap.
    pub kind: String,
    /// The gateway user it syncs for.
    pub user: String,
    /// What keeps it from syncing; empty when nothing does.
    pub problem: String,
    /// Its collections.
    pub collections: i64,
}

/// The DAV name of a collection bound to `backend_href`: its last path segment.
pub fn collection_name(backend_href: &str) -> String {
    let seg = backend_href
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let clean: String = postern_davproto::path::decoded(seg)
        .chars()
        .filter(|c| !c.is_control() && *c != '/')
        .collect();
    if clean.is_empty() {
        "collection".to_string()
    } else {
        clean
    }
}

impl Store {
    /// Records what keeps a source from syncing (`""` for nothing).
    pub async fn set_source_problem(
        &self,
        tenant: Uuid,
        source: Uuid,
        problem: &str,
    ) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE sources SET problem = $3 WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &source, &problem],
        )
        .await?;
        Ok(())
    }

    /// Every source of a tenant (or of all), with its connector, user and problem.
    pub async fn list_sources(&self, tenant: Option<Uuid>) -> Result<Vec<SourceRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT s.id, t.name, k.name, s.name, s.kind, u.name, s.problem,
                        (SELECT count(*) FROM collections c WHERE c.tenant_id = s.tenant_id AND c.source_id = s.id)
                 FROM sources s
                 JOIN tenants t ON t.id = s.tenant_id
                 JOIN connectors k ON k.tenant_id = s.tenant_id AND k.id = s.connector_id
                 JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
                 WHERE ($1::uuid IS NULL OR s.tenant_id = $1)
                 ORDER BY t.name, k.name, s.name",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SourceRow {
                id: r.get(0),
                tenant: r.get(1),
                connector: r.get(2),
                name: r.get(3),
                kind: r.get(4),
                user: r.get(5),
                problem: r.get(6),
                collections: r.get(7),
            })
            .collect())
    }

    /// Records (or updates) a connector's source; returns its id.
    pub async fn upsert_source(
        &self,
        tenant: Uuid,
        connector: Uuid,
        spec: &SourceSpec,
    ) -> Result<Uuid> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "INSERT INTO sources (tenant_id, id, connector_id, name, kind, user_id, mode, conflict)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (tenant_id, connector_id, name) DO UPDATE
                   SET kind = EXCLUDED.kind, user_id = EXCLUDED.user_id, mode = EXCLUDED.mode, conflict = EXCLUDED.conflict
                 RETURNING id",
                &[
                    &tenant,
                    &Uuid::new_v4(),
                    &connector,
                    &spec.name,
                    &spec.kind,
                    &spec.user_id,
                    &spec.mode.as_str(),
                    &spec.conflict.as_str(),
                ],
            )
            .await?;
        let id: Uuid = row.get(0);
        // Collections follow their source's defaults unless an operator overrode them.
        let changed: Vec<Uuid> = c
            .query(
                "UPDATE collections SET mode = $3, conflict = $4
                 WHERE tenant_id = $1 AND source_id = $2 AND NOT mode_override
                   AND (mode <> $3 OR conflict <> $4)
                 RETURNING id",
                &[&tenant, &id, &spec.mode.as_str(), &spec.conflict.as_str()],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        rebase_for_policy(&c, tenant, &changed).await?;
        Ok(id)
    }

    /// Records what discovery found for a source, creating collections it has not
    /// seen before. Returns the source's collections.
    pub async fn upsert_collections(
        &self,
        tenant: Uuid,
        source: Uuid,
        found: &[FoundCollection],
    ) -> Result<Vec<Collection>> {
        let c = self.client().await?;
        for f in found {
            // The DAV name is the back-end href's last segment, made unique per user
            // and kind with a short suffix when two sources use the same one.
            let id = Uuid::new_v4();
            let base = collection_name(&f.backend_href);
            let unique = format!("{base}-{}", &id.simple().to_string()[..8]);
            c.execute(
                "INSERT INTO collections (tenant_id, id, user_id, source_id, kind, backend_href, display_name, color, mode, conflict, name,
                                          role, delimiter, mailbox_name)
                 SELECT $1, $2, s.user_id, s.id, $4, $5, $6, $7, s.mode, s.conflict,
                        CASE WHEN EXISTS (SELECT 1 FROM collections d WHERE d.tenant_id = $1 AND d.user_id = s.user_id
                                          AND d.kind = $4 AND d.name = $8) THEN $9 ELSE $8 END,
                        $10, $11, CASE WHEN $4 = 'mailbox' THEN $6 END
                 FROM sources s WHERE s.tenant_id = $1 AND s.id = $3
                 ON CONFLICT (tenant_id, source_id, backend_href) DO UPDATE
                   SET color = EXCLUDED.color, role = EXCLUDED.role, delimiter = EXCLUDED.delimiter,
                       -- A client's rename waiting for the back end keeps its new name.
                       display_name = CASE WHEN collections.rename_to IS NULL
                                           THEN EXCLUDED.display_name ELSE collections.display_name END,
                       mailbox_name = CASE WHEN collections.rename_to IS NULL
                                           THEN EXCLUDED.mailbox_name ELSE collections.mailbox_name END",
                &[&tenant, &id, &source, &f.kind.as_str(), &f.backend_href, &f.display_name, &f.color, &base, &unique,
                  &f.role.map(|r| r.as_str()), &f.delimiter],
            )
            .await?;
        }
        self.source_collections(tenant, source).await
    }

    /// The collections of a source.
    pub async fn source_collections(&self, tenant: Uuid, source: Uuid) -> Result<Vec<Collection>> {
        let c = self.client().await?;
        let sql = format!(
            "{COLLECTION_SELECT} WHERE c.tenant_id = $1 AND c.source_id = $2 ORDER BY c.backend_href"
        );
        let rows = c.query(&sql, &[&tenant, &source]).await?;
        Ok(rows.iter().map(collection_from_row).collect())
    }

    /// Every collection of a tenant (or of all tenants with `None`), for `admin status`.
    pub async fn list_collections(&self, tenant: Option<Uuid>) -> Result<Vec<Collection>> {
        let c = self.client().await?;
        let sql = format!(
            "{COLLECTION_SELECT} WHERE ($1::uuid IS NULL OR c.tenant_id = $1) ORDER BY u.name, c.backend_href"
        );
        let rows = c.query(&sql, &[&tenant]).await?;
        Ok(rows.iter().map(collection_from_row).collect())
    }

    /// One collection of a tenant.
    pub async fn collection(&self, tenant: Uuid, id: Uuid) -> Result<Collection> {
        let c = self.client().await?;
        let sql = format!("{COLLECTION_SELECT} WHERE c.tenant_id = $1 AND c.id = $2");
        c.query_opt(&sql, &[&tenant, &id])
            .await?
            .map(|r| collection_from_row(&r))
            .ok_or_else(|| StoreError::NotFound(format!("collection {id}")))
    }

    /// Pauses a collection (`Some(reason)`) or resumes it (`None`).
    pub async fn set_paused(&self, tenant: Uuid, id: Uuid, reason: Option<&str>) -> Result<()> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE collections SET paused_reason = $3 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id, &reason],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("collection {id}")));
        }
        Ok(())
    }

    /// Sets a collection's mode and/or policy, overriding its source's defaults.
    pub async fn set_collection_policy(
        &self,
        tenant: Uuid,
        id: Uuid,
        mode: Option<Mode>,
        conflict: Option<ConflictPolicy>,
    ) -> Result<()> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE collections SET mode = COALESCE($3, mode), conflict = COALESCE($4, conflict), mode_override = true
                 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id, &mode.map(Mode::as_str), &conflict.map(ConflictPolicy::as_str)],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("collection {id}")));
        }
        rebase_for_policy(&c, tenant, &[id]).await?;
        Ok(())
    }

    /// Binds a collection a client created (or a mailbox a client renamed) to the
    /// back-end collection the connector made (or renamed) for it. A mailbox that
    /// discovery found there meanwhile (the connector stopped between making it and
    /// saying so) is that same mailbox listed twice: it goes, unless clients changed it.
    pub async fn bind_created(
        &self,
        tenant: Uuid,
        source: Uuid,
        id: Uuid,
        backend_href: &str,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "DELETE FROM collections d
             WHERE d.tenant_id = $1 AND d.source_id = $2 AND d.backend_href = $4 AND d.id <> $3
               AND d.kind = 'mailbox' AND NOT d.create_pending AND d.rename_to IS NULL
               AND NOT EXISTS (SELECT 1 FROM items i WHERE i.tenant_id = d.tenant_id
                               AND i.collection_id = d.id AND i.pending_seq IS NOT NULL)",
            &[&tenant, &source, &id, &backend_href],
        )
        .await?;
        tx.execute(
            "UPDATE collections SET backend_href = $4, create_pending = false, rename_to = NULL,
                    display_name = COALESCE(rename_to, display_name),
                    mailbox_name = COALESCE(rename_to, mailbox_name)
             WHERE tenant_id = $1 AND source_id = $2 AND id = $3
               AND (create_pending OR rename_to IS NOT NULL)",
            &[&tenant, &source, &id, &backend_href],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the version of a collection's properties the back end now has.
    pub async fn props_applied(
        &self,
        tenant: Uuid,
        source: Uuid,
        id: Uuid,
        version: i64,
    ) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE collections SET props_applied = GREATEST(props_applied, $4)
             WHERE tenant_id = $1 AND source_id = $2 AND id = $3",
            &[&tenant, &source, &id, &version],
        )
        .await?;
        Ok(())
    }

    /// Removes a collection a client deleted, now that the back end has deleted it too.
    pub async fn remove_deleted(&self, tenant: Uuid, source: Uuid, id: Uuid) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM collections WHERE tenant_id = $1 AND source_id = $2 AND id = $3 AND delete_pending",
            &[&tenant, &source, &id],
        )
        .await?;
        Ok(())
    }

    /// The source a collection belongs to.
    pub async fn collection_source(&self, tenant: Uuid, id: Uuid) -> Result<Option<Uuid>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            "SELECT source_id FROM collections WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &id],
        )
        .await?
        .map(|r| r.get(0)))
    }

    /// Gateway changes waiting for the back end, per collection (all tenants; for
    /// metrics).
    pub async fn pending_by_collection(&self) -> Result<Vec<(Uuid, i64)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT collection_id, count(*) FROM items WHERE pending_seq IS NOT NULL GROUP BY collection_id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Items set aside after a back-end refusal, per collection (for `/metrics`).
    pub async fn set_aside_by_collection(&self) -> Result<Vec<(Uuid, i64)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT collection_id, count(*) FROM items
                 WHERE refused_seq IS NOT NULL AND refused_seq = pending_seq GROUP BY collection_id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Forces a full resync: the saved back-end state and every known back-end version
    /// are forgotten, so the next round compares the whole back end and re-reads every
    /// item (identical content is recognised; nothing is duplicated). Returns how many
    /// items will be compared again, and the fencing token that a round begun after
    /// this request holds a newer one than.
    pub async fn force_resync(&self, tenant: Uuid, id: Uuid) -> Result<(u64, i64)> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE collections SET backend_state = '' WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("collection {id}")));
        }
        let items = tx
            .execute(
                "UPDATE items SET backend_version = '' WHERE tenant_id = $1 AND collection_id = $2 AND backend_href IS NOT NULL",
                &[&tenant, &id],
            )
            .await?;
        // A round in flight planned from the old state and would save it back over
        // this request: fence it off (its packets are refused as stale) and let the
        // next round start from nothing.
        let fence: i64 = tx
            .query_opt(
                "UPDATE leases SET fencing_token = fencing_token + 1, expires_at = now()
                 WHERE tenant_id = $1 AND collection_id = $2
                 RETURNING fencing_token",
                &[&tenant, &id],
            )
            .await?
            .map_or(0, |r| r.get(0));
        super::items::notify(&tx, tenant, id).await?;
        tx.commit().await?;
        Ok((items, fence))
    }

    /// Records how far a running round got.
    pub async fn record_progress(
        &self,
        tenant: Uuid,
        id: Uuid,
        phase: &str,
        done: u64,
        total: u64,
    ) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE collections SET progress_phase = $3, progress_done = $4, progress_total = $5,
                                    progress_at = clock_timestamp()
             WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &id, &phase, &(done as i64), &(total as i64)],
        )
        .await?;
        Ok(())
    }

    /// Records how a round ended.
    pub async fn record_round(
        &self,
        tenant: Uuid,
        id: Uuid,
        outcome: &str,
        detail: &str,
        fencing_token: u64,
    ) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE collections SET last_round_at = clock_timestamp(), last_outcome = $3, last_detail = $4,
                                    last_round_token = $5
             WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &id, &outcome, &detail, &(fencing_token as i64)],
        )
        .await?;
        Ok(())
    }
}

/// After a policy change: a collection now under `merge` takes every item both sides
/// agree on (nothing pending, on the back end) as its merge base; a collection under
/// another policy keeps no bases.
async fn rebase_for_policy(
    c: &deadpool_postgres::Client,
    tenant: Uuid,
    collections: &[Uuid],
) -> Result<()> {
    if collections.is_empty() {
        return Ok(());
    }
    c.execute(
        "UPDATE items i SET base_content = CASE WHEN c.conflict = 'merge' THEN i.content END
         FROM collections c
         WHERE c.tenant_id = i.tenant_id AND c.id = i.collection_id
           AND i.tenant_id = $1 AND i.collection_id = ANY($2)
           AND ((c.conflict = 'merge' AND i.base_content IS NULL AND NOT i.deleted
                 AND i.pending_seq IS NULL AND i.backend_href IS NOT NULL)
             OR (c.conflict <> 'merge' AND i.base_content IS NOT NULL))",
        &[&tenant, &collections],
    )
    .await?;
    Ok(())
}
