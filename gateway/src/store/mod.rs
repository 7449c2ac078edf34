//! The store: every fact of the gateway lives in PostgreSQL, so any number of gateway
//! replicas can serve the same data. One file per concern:
//!
//! - [`migrations`]: the schema, applied at start, safe when replicas start at once.
//! - [`tenants`]: tenants, users, app passwords, connectors.
//! - [`collections`]: sources and collections, their modes and saved sync state.
//! - [`items`]: the index, journal pulls, and the store API for gateway-side edits.
//! - [`moves`]: COPY and MOVE of items, within and between a user's collections.
//! - [`packet`]: committing a connector's change packet (fencing and StaleBase checks).
//! - [`leases`]: leases with fencing tokens, kept in rows.
//! - [`conflicts`]: losing versions kept for the operator.
//! - [`mail`]: message bodies (once per content, read by range) and each mailbox's
//!   gateway UIDs and UIDVALIDITY.
//!
//! Every query names its tenant: there is no way to read or write across tenants.

pub mod body_gc;
pub mod collections;
pub mod conflicts;
pub mod dav;
pub mod folders;
pub mod imap;
pub mod items;
pub mod leases;
pub mod mail;
pub mod mail_moves;
pub mod mailboxes;
pub mod migrations;
pub mod moves;
pub mod outbox;
pub mod packet;
pub mod structure;
pub mod tenants;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use uuid::Uuid;

/// The channel gateway-side changes are announced on (payload `tenant:collection`), so
/// the replica holding the connector's stream can nudge it.
pub const CHANGES_CHANNEL: &str = "postern_changes";

/// Errors of the store, each with a meaning callers map to gRPC or HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or failed.
    #[error("database: {}", db_message(.0))]
    Db(tokio_postgres::Error),
    /// No connection could be taken from the pool.
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The named thing does not exist (in this tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with what exists (a duplicate name).
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// A database error is the caller's when the database refused a value it sent: a
/// data exception (class 22: a NUL byte in text, a string too long for its column, a
/// malformed value) or a program limit (class 54: a value too large for an index).
/// Those become [`StoreError::Invalid`], which every edge answers as the caller's
/// mistake (400, `Invalid`), with no detail of the database; anything else stays a
/// fault of the service.
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let class = e.code().map(|c| &c.code()[..2]);
        match class {
            Some("22") => StoreError::Invalid(
                "a value in the request cannot be stored (a control character, or too long)".into(),
            ),
            Some("54") => {
                StoreError::Invalid("a value in the request is too large to be stored".into())
            }
            _ => StoreError::Db(e),
        }
    }
}

/// The server's message for a database error (the plain `Display` says only "db error").
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

/// The longest a caller waits for a pooled connection, or for a new one to connect.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Result alias for the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    url: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Connects a pool to `url` (`postgres://user@host:port/db`). Does not touch the
    /// database until first use.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            StoreError::Invalid(format!("database url: {e}"))
        })?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Bounded waits: with the database unreachable, callers fail in seconds (and
        // clients see 503) instead of queueing forever.
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Invalid(format!("database pool: {e}")))?;
        Ok(Store {
            pool,
            url: url.to_string(),
        })
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }

    /// Runs a read whose statement is prepared once per pooled connection and kept:
    /// one round trip per call instead of two. For the queries every DAV request makes.
    pub(crate) async fn read(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(sql).await?;
        Ok(c.query(&stmt, params).await?)
    }

    /// The database URL (for the LISTEN connection, which must not be pooled).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        match self.client().await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}

/// Parses a textual UUID from a request, as an `Invalid` error when malformed.
pub fn parse_id(what: &str, s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| StoreError::Invalid(format!("{what} {s:?} is not a valid id")))
}
