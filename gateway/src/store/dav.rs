//! What the CalDAV/CardDAV endpoint reads and writes: a user's collections by name,
//! items by name, and the changes since a sync token. Every query names tenant and
//! user (or a collection already checked to be the user's).

use uuid::Uuid;

use super::{Result, Store, StoreError};

/// A collection as a DAV client sees it.
#[derive(Debug, Clone)]
pub struct DavCollection {
    /// Gateway id.
    pub id: Uuid,
    /// URL segment.
    pub name: String,
    /// "calendar" or "addressbook".
    pub kind: String,
    /// Display name.
    pub display_name: String,
    /// Colour ("#rrggbb" or "").
    pub color: String,
    /// Apple calendar order.
    pub sort_order: Option<i32>,
    /// Sync mode: clients may write only `two-way` collections.
    pub mode: String,
    /// Last journal sequence: the collection's version (ctag, sync token).
    pub head: i64,
    /// calendar-description / addressbook-description.
    pub description: String,
    /// calendar-timezone: a VCALENDAR with one VTIMEZONE, or "".
    pub timezone: String,
    /// The components a calendar holds (upper case); empty for the default set.
    pub components: Vec<String>,
    /// Dead properties: `{ns}name` and their inner markup.
    pub dead_props: Vec<(String, String)>,
}

/// What a client's MKCALENDAR or extended MKCOL asks for.
#[derive(Debug, Clone, Default)]
pub struct NewCollection {
    /// Display name.
    pub display_name: String,
    /// Colour.
    pub color: String,
    /// Description.
    pub description: String,
    /// Calendar time zone (a VCALENDAR with one VTIMEZONE), or "".
    pub timezone: String,
    /// The components the calendar holds; empty for the default set.
    pub components: Vec<String>,
}

/// Properties a client sets on a collection (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct CollectionProps {
    /// Display name.
    pub display_name: Option<String>,
    /// Colour.
    pub color: Option<String>,
    /// Apple calendar order.
    pub order: Option<i32>,
    /// Description.
    pub description: Option<String>,
    /// Calendar time zone.
    pub timezone: Option<String>,
    /// Dead properties to set (`Some(markup)`) or remove (`None`).
    pub dead: Vec<(String, Option<String>)>,
}

/// An item's body and metadata.
#[derive(Debug, Clone)]
pub struct DavItem {
    /// URL segment.
    pub name: String,
    /// Strong ETag.
    pub etag: String,
    /// MIME type.
    pub content_type: String,
    /// Bytes as their author sent them (`None` for metadata-only reads).
    pub content: Option<Vec<u8>>,
    /// Length of the content.
    pub length: i64,
}

/// One member change since a sync token.
#[derive(Debug, Clone)]
pub struct MemberChange {
    /// URL segment.
    pub name: String,
    /// ETag, or `None` when the member was deleted.
    pub etag: Option<String>,
    /// Sequence of the change.
    pub seq: i64,
}

/// A user's identity and live password hashes, for authentication.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Tenant id.
    pub tenant: Uuid,
    /// User id.
    pub user: Uuid,
    /// argon2id hashes of the live app passwords.
    pub hashes: Vec<String>,
}

/// The columns of a [`DavCollection`], as a literal for `concat!`.
macro_rules! coll_select {
    () => {
        "SELECT id, name, kind, display_name, color, sort_order, mode, journal_head,
                description, calendar_timezone, components, dead_props FROM collections"
    };
}

/// The columns of a [`DavItem`], with `content` or `NULL::bytea` in its place.
macro_rules! item_select {
    ($content:literal) => {
        concat!(
            "SELECT name, etag, content_type, ",
            $content,
            ", COALESCE(length(content), 0)::bigint FROM items"
        )
    };
}

/// A collection's live items in name order, read a page at a time with a keyset on the
/// `items_live_name` index, so that an answer over any number of items holds one page
/// in memory. Pages are separate reads: an item written meanwhile may or may not show,
/// as with any listing taken while clients write; the collection's version read before
/// the listing tells the client to look again.
pub struct ItemPages {
    store: Store,
    tenant: Uuid,
    collection: Uuid,
    with_content: bool,
    page: i64,
    /// The last name read, `None` once the last page was read.
    after: Option<String>,
}

impl ItemPages {
    /// The next page, or `None` when every item was read.
    pub async fn next(&mut self) -> Result<Option<Vec<DavItem>>> {
        let Some(after) = &self.after else {
            return Ok(None);
        };
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&self.tenant, &self.collection, after, &self.page];
        // Two literals (statements are cached by their text), one keyset.
        macro_rules! page {
            ($content:literal) => {
                concat!(
                    item_select!($content),
                    " WHERE tenant_id = $1 AND collection_id = $2 AND NOT deleted",
                    " AND name > $3 ORDER BY name LIMIT $4"
                )
            };
        }
        let sql = if self.with_content {
            page!("content")
        } else {
            page!("NULL::bytea")
        };
        let rows = self.store.read(sql, &params).await?;
        let items: Vec<DavItem> = rows.iter().map(item_row).collect();
        self.after = match items.last() {
            Some(last) if items.len() as i64 == self.page => Some(last.name.clone()),
            _ => None,
        };
        Ok((!items.is_empty()).then_some(items))
    }
}

fn item_row(r: &tokio_postgres::Row) -> DavItem {
    DavItem {
        name: r.get(0),
        etag: r.get(1),
        content_type: r.get(2),
        content: r.get(3),
        length: r.get(4),
    }
}

fn coll_row(r: &tokio_postgres::Row) -> DavCollection {
    DavCollection {
        id: r.get(0),
        name: r.get(1),
        kind: r.get(2),
        display_name: r.get(3),
        color: r.get(4),
        sort_order: r.get(5),
        mode: r.get(6),
        head: r.get(7),
        description: r.get(8),
        timezone: r.get(9),
        components: r
            .get::<_, String>(10)
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        dead_props: r
            .get::<_, serde_json::Value>(11)
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl Store {
    /// The tenant, user and live password hashes of `user@tenant`.
    pub async fn credentials(&self, tenant: &str, user: &str) -> Result<Option<Credentials>> {
        let rows = self
            .read(
                "SELECT t.id, u.id, p.hash FROM tenants t
                 JOIN users u ON u.tenant_id = t.id AND u.name = $2
                 LEFT JOIN app_passwords p ON p.tenant_id = t.id AND p.user_id = u.id AND p.revoked_at IS NULL
                 WHERE t.name = $1",
                &[&tenant, &user],
            )
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            tenant: first.get(0),
            user: first.get(1),
            hashes: rows
                .iter()
                .filter_map(|r| r.get::<_, Option<String>>(2))
                .collect(),
        }))
    }

    /// A user's collections of one kind.
    pub async fn dav_collections(
        &self,
        tenant: Uuid,
        user: Uuid,
        kind: &str,
    ) -> Result<Vec<DavCollection>> {
        let rows = self
            .read(
                concat!(
                    coll_select!(),
                    " WHERE tenant_id = $1 AND user_id = $2 AND kind = $3 AND NOT delete_pending ORDER BY name"
                ),
                &[&tenant, &user, &kind],
            )
            .await?;
        Ok(rows.iter().map(coll_row).collect())
    }

    /// One of a user's collections by name.
    pub async fn dav_collection(
        &self,
        tenant: Uuid,
        user: Uuid,
        kind: &str,
        name: &str,
    ) -> Result<Option<DavCollection>> {
        let row = self
            .read(
                concat!(
                    coll_select!(),
                    " WHERE tenant_id = $1 AND user_id = $2 AND kind = $3 AND name = $4 AND NOT delete_pending"
                ),
                &[&tenant, &user, &kind, &name],
            )
            .await?
            .into_iter()
            .next();
        Ok(row.as_ref().map(coll_row))
    }

    /// Creates a collection for a client (MKCALENDAR, extended MKCOL). It is bound to
    /// the user's source of the right kind; the connector creates it on the back end.
    /// `Ok(None)` when the user has no such source, or it is not two-way.
    pub async fn create_dav_collection(
        &self,
        tenant: Uuid,
        user: Uuid,
        kind: &str,
        name: &str,
        made: &NewCollection,
    ) -> Result<Option<Uuid>> {
        let (display_name, color) = (&made.display_name, &made.color);
        let source_kind = if kind == "calendar" {
            "caldav"
        } else {
            "carddav"
        };
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let source = tx
            .query_opt(
                "SELECT id, mode, conflict FROM sources WHERE tenant_id = $1 AND user_id = $2 AND kind = $3
                 ORDER BY (mode = 'two-way') DESC, name LIMIT 1",
                &[&tenant, &user, &source_kind],
            )
            .await?;
        let Some(source) = source else {
            return Ok(None);
        };
        let (source_id, mode, conflict): (Uuid, String, String) =
            (source.get(0), source.get(1), source.get(2));
        if mode != "two-way" {
            return Ok(None);
        }
        let id = Uuid::new_v4();
        tx.execute(
            "INSERT INTO collections (tenant_id, id, user_id, source_id, kind, backend_href, display_name, color, mode, conflict,
                                      name, create_pending, description, calendar_timezone, components)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, true, $12, $13, $14)",
            &[&tenant, &id, &user, &source_id, &kind, &format!("pending:{id}"), &display_name, &color, &mode, &conflict, &name,
              &made.description, &made.timezone, &made.components.join(",")],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                StoreError::Conflict(format!("collection {name:?} exists"))
            } else {
                StoreError::from(e)
            }
        })?;
        super::items::notify(&tx, tenant, id).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Deletes a client's collection. It vanishes from the endpoint at once and its
    /// name is free again (the row keeps a name no client can write); the row stays,
    /// marked, until the connector has deleted the collection on the back end, even
    /// when the connector may be creating it there at this moment: a client's delete
    /// wins over a create in flight, and the calendar never comes back.
    pub async fn delete_dav_collection(&self, tenant: Uuid, collection: Uuid) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "UPDATE collections SET delete_pending = true, name = '.deleted-' || id::text
             WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &collection],
        )
        .await?;
        super::items::notify(&tx, tenant, collection).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets client-editable properties of a collection (`None` leaves one as it is).
    pub async fn set_dav_props(
        &self,
        tenant: Uuid,
        collection: Uuid,
        props: &CollectionProps,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let set: serde_json::Map<String, serde_json::Value> = props
            .dead
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), serde_json::Value::String(v.clone()?))))
            .collect();
        let removed: Vec<String> = props
            .dead
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        tx.execute(
            "UPDATE collections SET display_name = COALESCE($3, display_name), color = COALESCE($4, color),
                    sort_order = COALESCE($5, sort_order), description = COALESCE($6, description),
                    calendar_timezone = COALESCE($7, calendar_timezone),
                    dead_props = (dead_props - $9::text[]) || $8::jsonb,
                    props_version = props_version + 1
             WHERE tenant_id = $1 AND id = $2",
            &[
                &tenant,
                &collection,
                &props.display_name,
                &props.color,
                &props.order,
                &props.description,
                &props.timezone,
                &serde_json::Value::Object(set),
                &removed,
            ],
        )
        .await?;
        // Wake the connector: it carries the properties to the back end.
        super::items::notify(&tx, tenant, collection).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A live item by name, with its content.
    pub async fn dav_item(
        &self,
        tenant: Uuid,
        collection: Uuid,
        name: &str,
    ) -> Result<Option<DavItem>> {
        let row = self
            .read(
                concat!(
                    item_select!("content"),
                    " WHERE tenant_id = $1 AND collection_id = $2 AND name = $3 AND NOT deleted"
                ),
                &[&tenant, &collection, &name],
            )
            .await?
            .into_iter()
            .next();
        Ok(row.as_ref().map(item_row))
    }

    /// A collection's live items in name order, a page of `page` at a time (see
    /// [`ItemPages`]).
    pub fn dav_item_pages(
        &self,
        tenant: Uuid,
        collection: Uuid,
        with_content: bool,
        page: i64,
    ) -> ItemPages {
        ItemPages {
            store: self.clone(),
            tenant,
            collection,
            with_content,
            page,
            after: Some(String::new()),
        }
    }

    /// Live items by name (multiget); names not found are simply absent.
    pub async fn dav_items_named(
        &self,
        tenant: Uuid,
        collection: Uuid,
        names: &[String],
    ) -> Result<Vec<DavItem>> {
        let rows = self
            .read(
                // One index lookup per name, whatever the statistics say. Right after
                // a bulk import they still describe a near-empty collection, and the
                // planner then scans the whole collection once per call (or once per
                // name), which made a sync answer read in pages quadratic in its size.
                // `LIMIT 1` (a live name is unique) keeps the subquery from being
                // flattened into a join the planner could turn around.
                concat!(
                    "SELECT i.name, i.etag, i.content_type, i.content,",
                    " COALESCE(length(i.content), 0)::bigint",
                    " FROM unnest($3::text[]) AS wanted(name) CROSS JOIN LATERAL",
                    " (SELECT name, etag, content_type, content FROM items",
                    "  WHERE tenant_id = $1 AND collection_id = $2 AND NOT deleted",
                    "  AND items.name = wanted.name LIMIT 1) AS i"
                ),
                &[&tenant, &collection, &names],
            )
            .await?;
        Ok(rows.iter().map(item_row).collect())
    }

    /// Members changed after `since`, oldest change first, at most `limit` (and one
    /// more, to tell the caller the answer is truncated). A name deleted and created
    /// again appears once, as its live item.
    pub async fn changes_since(
        &self,
        tenant: Uuid,
        collection: Uuid,
        since: i64,
        limit: i64,
    ) -> Result<Vec<MemberChange>> {
        let rows = self
            .read(
                "SELECT DISTINCT ON (name) name, CASE WHEN deleted THEN NULL ELSE etag END, last_seq
                 FROM items WHERE tenant_id = $1 AND collection_id = $2 AND last_seq > $3
                 ORDER BY name, deleted ASC, last_seq DESC",
                &[&tenant, &collection, &since],
            )
            .await?;
        let mut out: Vec<MemberChange> = rows
            .iter()
            .map(|r| MemberChange {
                name: r.get(0),
                etag: r.get(1),
                seq: r.get(2),
            })
            .collect();
        out.sort_by_key(|m| m.seq);
        out.truncate(usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX));
        Ok(out)
    }
}

/// Maps a missing thing to `NotFound` with a name.
pub fn found<T>(what: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| StoreError::NotFound(what.to_string()))
}
