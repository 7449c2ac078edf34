//! Schema migrations, applied at start by `serve` (and by `admin`). Idempotent: each
//! version is applied once, recorded in `schema_migrations`. Several replicas starting
//! at once serialise on a transaction-scoped advisory lock, which is released at commit
//! and so cannot leak behind a connection pooler.

use super::{Result, Store};

/// (version, SQL), in order. Append; never edit an applied one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/0002_collection_names.sql"),
    ),
    (
        3,
        include_str!("../../migrations/0003_collection_lifecycle.sql"),
    ),
    (4, include_str!("../../migrations/0004_dav_folders.sql")),
    (5, include_str!("../../migrations/0005_round_progress.sql")),
    (6, include_str!("../../migrations/0006_set_aside.sql")),
    (7, include_str!("../../migrations/0007_source_problems.sql")),
    (8, include_str!("../../migrations/0008_canonical_names.sql")),
    (
        9,
        include_str!("../../migrations/0009_collection_properties.sql"),
    ),
    (10, include_str!("../../migrations/0010_merge_base.sql")),
    (11, include_str!("../../migrations/0011_mail.sql")),
    (12, include_str!("../../migrations/0012_mail_moves.sql")),
    (13, include_str!("../../migrations/0013_mailbox_rename.sql")),
    (14, include_str!("../../migrations/0014_body_gc.sql")),
    (15, include_str!("../../migrations/0015_submission.sql")),
    (
        16,
        include_str!("../../migrations/0016_message_structure.sql"),
    ),
];

/// An arbitrary constant naming the migration lock.
const LOCK_KEY: i64 = 0x0070_6f73_7465_726e;

impl Store {
    /// Applies every migration not yet applied. Returns how many ran.
    pub async fn migrate(&self) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version int PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        let mut ran = 0;
        for (version, sql) in MIGRATIONS {
            let done = tx
                .query_opt(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    &[version],
                )
                .await?;
            if done.is_none() {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await?;
                ran += 1;
            }
        }
        tx.commit().await?;
        Ok(ran)
    }

    /// True when every migration this build knows has been applied (readiness).
    pub async fn migrated(&self) -> bool {
        let Ok(client) = self.client().await else {
            return false;
        };
        let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        matches!(
            client
                .query_opt(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    &[&latest]
                )
                .await,
            Ok(Some(_))
        )
    }
}
