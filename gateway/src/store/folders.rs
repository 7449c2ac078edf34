//! Plain WebDAV resources inside a collection (folders, arbitrary files, dead
//! properties): gateway-only, never synced. Paths are relative to the collection;
//! folder paths end in `/`.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use uuid::Uuid;

use super::{Result, Store};

/// A plain resource.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// Relative path (`litmus/`, `litmus/res`).
    pub path: String,
    /// A folder.
    pub is_dir: bool,
    /// Bytes of a file.
    pub content: Option<Vec<u8>>,
    /// MIME type.
    pub content_type: String,
    /// ETag of a file.
    pub etag: String,
    /// Dead properties: `{ns}local` → value markup.
    pub props: BTreeMap<String, String>,
}

fn entry(r: &tokio_postgres::Row) -> FileEntry {
    let props: Json = r.get(5);
    FileEntry {
        path: r.get(0),
        is_dir: r.get(1),
        content: r.get(2),
        content_type: r.get(3),
        etag: r.get(4),
        props: props
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

const SELECT: &str = "SELECT path, is_dir, content, content_type, etag, props FROM dav_files";

impl Store {
    /// One resource.
    pub async fn file(&self, tenant: Uuid, coll: Uuid, path: &str) -> Result<Option<FileEntry>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("{SELECT} WHERE tenant_id = $1 AND collection_id = $2 AND path = $3"),
                &[&tenant, &coll, &path],
            )
            .await?;
        Ok(row.as_ref().map(entry))
    }

    /// A resource and, for a folder (path ending in `/`), everything below it.
    pub async fn files_under(
        &self,
        tenant: Uuid,
        coll: Uuid,
        path: &str,
    ) -> Result<Vec<FileEntry>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("{SELECT} WHERE tenant_id = $1 AND collection_id = $2 AND (path = $3 OR (right($3, 1) = '/' AND left(path, length($3)) = $3)) ORDER BY path"),
                &[&tenant, &coll, &path],
            )
            .await?;
        Ok(rows.iter().map(entry).collect())
    }

    /// Creates or replaces a resource (keeping its dead properties on replace).
    pub async fn put_file(
        &self,
        tenant: Uuid,
        coll: Uuid,
        path: &str,
        is_dir: bool,
        content: Option<&[u8]>,
        content_type: &str,
    ) -> Result<bool> {
        let c = self.client().await?;
        let etag = content
            .map(postern_core::content::etag_of)
            .unwrap_or_default();
        let row = c
            .query_one(
                "INSERT INTO dav_files (tenant_id, collection_id, path, is_dir, content, content_type, etag)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant_id, collection_id, path) DO UPDATE
                   SET content = EXCLUDED.content, content_type = EXCLUDED.content_type, etag = EXCLUDED.etag,
                       modified_at = now()
                 RETURNING (xmax = 0)",
                &[&tenant, &coll, &path, &is_dir, &content, &content_type, &etag],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Copies a resource tree with its properties (for COPY and MOVE).
    pub async fn copy_files(
        &self,
        tenant: Uuid,
        coll: Uuid,
        entries: &[FileEntry],
        from: &str,
        to: &str,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for e in entries {
            let path = format!("{to}{}", &e.path[from.len()..]);
            let props: Json = Json::Object(
                e.props
                    .iter()
                    .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                    .collect(),
            );
            tx.execute(
                "INSERT INTO dav_files (tenant_id, collection_id, path, is_dir, content, content_type, etag, props)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&tenant, &coll, &path, &e.is_dir, &e.content, &e.content_type, &e.etag, &props],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a resource and everything below it; returns how many went.
    pub async fn delete_files(&self, tenant: Uuid, coll: Uuid, path: &str) -> Result<u64> {
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM dav_files WHERE tenant_id = $1 AND collection_id = $2 AND (path = $3 OR (right($3, 1) = '/' AND left(path, length($3)) = $3))",
            &[&tenant, &coll, &path],
        )
        .await?)
    }

    /// Sets (`Some`) and removes (`None`) dead properties of a resource.
    pub async fn patch_file_props(
        &self,
        tenant: Uuid,
        coll: Uuid,
        path: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for (name, value) in changes {
            match value {
                Some(v) => {
                    tx.execute(
                        "UPDATE dav_files SET props = jsonb_set(props, ARRAY[$4], to_jsonb($5::text))
                         WHERE tenant_id = $1 AND collection_id = $2 AND path = $3",
                        &[&tenant, &coll, &path, name, v],
                    )
                    .await?
                }
                None => {
                    tx.execute(
                        "UPDATE dav_files SET props = props - $4 WHERE tenant_id = $1 AND collection_id = $2 AND path = $3",
                        &[&tenant, &coll, &path, name],
                    )
                    .await?
                }
            };
        }
        tx.commit().await?;
        Ok(())
    }
}
