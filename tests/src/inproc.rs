//! The gateway in process, without its binaries: a migrated store on a fresh
//! database of the test cluster, a link [`Session`] answered message by message (the
//! same code the gRPC service runs), and the DAV router answering requests in memory.
//! Behaviour that needs no real back end or client is proved here in milliseconds;
//! the end-to-end scenarios keep what only real servers and clients can show.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use base64::Engine;
use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_gateway::auth::{Claims, hash_password};
use postern_gateway::dav::{DavState, slots::UserSlots};
use postern_gateway::limits::Limits;
use postern_gateway::link::session::{LinkSettings, Session};
use postern_gateway::logins::Authenticator;
use postern_gateway::metrics::Metrics;
use postern_gateway::store::Store;
use postern_gateway::tls::ClientAddr;
use postern_proto as pb;
use reqwest::StatusCode;
use tower::ServiceExt;
use uuid::Uuid;

use crate::fresh_database;
use crate::link::Talk;

/// Alice's app password in every in-process gateway.
pub const ALICE_PASSWORD: &str = "alice-app-password";

/// A gateway in process: tenant `acme`, user `alice`, connector `hq`.
pub struct InProc {
    /// The store, for assertions and direct calls.
    pub store: Store,
    /// Tenant `acme`.
    pub tenant: Uuid,
    /// The connector's claims (its verified token).
    pub claims: Claims,
    metrics: Arc<Metrics>,
    dav: Router,
}

/// A DAV answer read whole.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as text.
    pub body: String,
}

impl InProc {
    /// A fresh database, migrated, with tenant, user, app password and connector.
    pub async fn start() -> Result<InProc> {
        Self::with_limits(Limits::default()).await
    }

    /// [`InProc::start`] with other limits.
    pub async fn with_limits(limits: Limits) -> Result<InProc> {
        let store = Store::connect(&fresh_database().await?, 8)?;
        store.migrate().await?;
        let tenant = store.add_tenant("acme").await?.id;
        // Hashed once per test binary: argon2 is slow in a debug build.
        static HASHES: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
        let (login, app) = HASHES.get_or_init(|| {
            (
                hash_password("alice-login").expect("hash"),
                hash_password(ALICE_PASSWORD).expect("hash"),
            )
        });
        store.add_user(tenant, "alice", login).await?;
        store.add_password(tenant, "alice", "test", app).await?;
        let expires = chrono_in_days(30);
        let (sub, jti) = store.enroll_connector(tenant, "hq", expires).await?;
        let claims = Claims {
            sub,
            tid: tenant,
            name: "hq".into(),
            jti,
            iat: 0,
            exp: i64::MAX,
        };
        let metrics = Metrics::shared();
        let limits = Arc::new(limits);
        let state = DavState {
            store: store.clone(),
            auth: Arc::new(Authenticator::new(&limits, metrics.clone())),
            limits: limits.clone(),
            metrics: metrics.clone(),
            slots: Arc::new(UserSlots::new(limits.max_requests_per_user)),
        };
        let dav = postern_gateway::http::router(store.clone(), state, metrics.clone());
        Ok(InProc {
            store,
            tenant,
            claims,
            metrics,
            dav,
        })
    }

    /// A link session of connector `hq`, as a new stream would have.
    pub fn session(&self, settings: LinkSettings) -> InLink {
        InLink {
            session: Session::new(
                self.store.clone(),
                settings,
                self.claims.clone(),
                "acme".into(),
                self.metrics.clone(),
            ),
            next: 0,
        }
    }

    /// A DAV request as alice; `headers` are extra headers.
    pub async fn dav(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Result<Answer> {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("alice@acme:{ALICE_PASSWORD}"));
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("Authorization", format!("Basic {basic}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(body.into())?;
        let addr: SocketAddr = "127.0.0.1:50000".parse()?;
        req.extensions_mut().insert(ConnectInfo(ClientAddr(addr)));
        let resp = self.dav.clone().oneshot(req).await?;
        let status = StatusCode::from_u16(resp.status().as_u16())?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in resp.headers() {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes())?,
                reqwest::header::HeaderValue::from_bytes(v.as_bytes())?,
            );
        }
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20).await?;
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

fn chrono_in_days(days: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::days(days)
}

/// A link session driven in process: [`Talk`] over [`Session::handle`].
pub struct InLink {
    /// The session.
    pub session: Session,
    next: u64,
}

impl Talk for InLink {
    async fn ask(&mut self, body: Req) -> Result<Ans> {
        self.next += 1;
        let id = self.next;
        let answers = self
            .session
            .handle(
                pb::ConnectorMessage {
                    request_id: id,
                    body: Some(body),
                    trace_context: Default::default(),
                },
                "127.0.0.1:50001",
            )
            .await;
        match answers.into_iter().find(|m| m.request_id == id) {
            Some(m) => m.body.ok_or_else(|| anyhow!("empty answer")),
            None => bail!("no answer"),
        }
    }
}

impl InLink {
    /// Every answer to one request (a journal pull can answer in several batches).
    pub async fn ask_all(&mut self, body: Req) -> Vec<Ans> {
        self.next += 1;
        let id = self.next;
        self.session
            .handle(
                pb::ConnectorMessage {
                    request_id: id,
                    body: Some(body),
                    trace_context: Default::default(),
                },
                "127.0.0.1:50001",
            )
            .await
            .into_iter()
            .filter(|m| m.request_id == id)
            .filter_map(|m| m.body)
            .collect()
    }

    /// The pending changes of a collection and the journal head, from every batch of
    /// a journal pull (as a connector reads them).
    pub async fn journal(&mut self, coll: &str) -> Result<(Vec<pb::Change>, u64)> {
        let mut out = Vec::new();
        let mut head = 0;
        for a in self
            .ask_all(Req::JournalPull(pb::JournalPull {
                collection_id: coll.into(),
                ..Default::default()
            }))
            .await
        {
            let Ans::JournalBatch(b) = a else {
                bail!("{a:?}")
            };
            head = b.head;
            out.extend(b.changes);
        }
        Ok((out, head))
    }
}
