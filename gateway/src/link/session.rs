//! One connector stream: what it may touch, and the answer to each of its messages.
//!
//! [`Session::handle`] is plain async Rust over the store, so tests can drive it
//! without gRPC; the tonic service in [`super`] only moves messages in and out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

mod body_part;
mod collections_found;
mod leases;
mod outbox;

use pb::connector_message::Body as In;
use pb::gateway_message::Body as Out;
use postern_core::model::{CollectionKind, ConflictPolicy, Mode};
use postern_proto as pb;
use tokio::sync::RwLock;
use tracing::{Instrument, debug, info, warn};
use uuid::Uuid;

use super::convert::{index_to_pb, pending_to_pb};
use crate::auth::Claims;
use crate::store::collections::{Collection, SourceSpec};

/// The MIME type of a message: what counts as a mail body on the link.
const MESSAGE: &str = "message/rfc822";
/// Index entries per `IndexBatch` (a few hundred bytes each: a batch stays far below
/// the largest link message, however large the collection).
const INDEX_BATCH: usize = 5_000;
use crate::store::packet::{Packet, PacketOutcome};
use crate::store::{Store, StoreError};

/// Settings that shape every session.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// How long a granted lease lasts unless renewed.
    pub lease_ttl: Duration,
    /// Largest number of changes in one JournalBatch.
    pub batch_changes: usize,
    /// Largest content bytes in one JournalBatch.
    pub batch_bytes: usize,
    /// How long a shutting-down gateway waits for rounds in flight.
    pub drain_deadline: Duration,
    /// Streams open at once with one connector token, on this process.
    pub max_streams_per_connector: usize,
    /// Largest message a connector may send, decompressed.
    pub max_message_bytes: usize,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            lease_ttl: Duration::from_secs(60),
            batch_changes: 500,
            batch_bytes: 4 << 20,
            drain_deadline: Duration::from_secs(20),
            max_streams_per_connector: 4,
            max_message_bytes: 16 << 20,
        }
    }
}

/// A source of this session: its id and owner.
#[derive(Debug, Clone)]
struct SourceRef {
    id: Uuid,
    /// The user whose data it carries.
    user: Uuid,
    /// An `smtp` source: it relays that user's outbox.
    smtp: bool,
}

/// The state of one stream. Cheap to clone: requests are served concurrently.
#[derive(Clone)]
pub struct Session {
    store: Store,
    settings: LinkSettings,
    /// Who is on the other end (from the verified token).
    pub claims: Claims,
    /// The connector's name for the tenant, for logs and `Welcome`.
    tenant_name: String,
    /// The process instance (from Hello); leases are held by it.
    instance: Arc<RwLock<String>>,
    /// Sources announced in Hello, by name.
    sources: Arc<RwLock<HashMap<String, SourceRef>>>,
    /// Collections assigned on this stream: the only ones it may lease, pull or write.
    collections: Arc<RwLock<HashSet<Uuid>>>,
    /// Counters.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Collections whose lease this stream's instance holds right now.
    held: Arc<RwLock<HashSet<Uuid>>>,
    /// The gateway is shutting down: no new leases.
    draining: Arc<std::sync::atomic::AtomicBool>,
    /// The stream has ended: a lease request still in flight must not leave a lease
    /// behind (see [`Session::close`]).
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connector", &self.claims.name)
            .finish_non_exhaustive()
    }
}

/// The span name of the gateway's work for a connector message.
fn message_name(body: &In) -> &'static str {
    match body {
        In::Hello(_) => "hello",
        In::CollectionsFound(_) => "collections found",
        In::Lease(l) if l.action == pb::lease_request::Action::Release as i32 => "lease release",
        In::Lease(l) if l.action == pb::lease_request::Action::Renew as i32 => "lease renew",
        In::Lease(_) => "lease acquire",
        In::IndexPull(_) => "index pull",
        In::JournalPull(_) => "journal pull",
        In::ChangePacket(_) => "change packet",
        In::Heartbeat(_) => "heartbeat",
        In::RoundReport(_) => "round report",
        In::RoundProgress(_) => "round progress",
        In::BodyPart(_) => "body part",
        In::BodiesQuery(_) => "bodies query",
        In::BodyRead(_) => "body read",
        In::OutboxPull(_) => "outbox pull",
        In::OutboxReport(_) => "outbox report",
    }
}

/// The collection a connector message is about, or "" for session-wide ones.
fn collection_of(body: &In) -> &str {
    match body {
        In::Lease(l) => &l.collection_id,
        In::IndexPull(p) => &p.collection_id,
        In::JournalPull(p) => &p.collection_id,
        In::ChangePacket(p) => &p.collection_id,
        In::RoundReport(r) => &r.collection_id,
        In::RoundProgress(p) => &p.collection_id,
        In::BodyPart(b) => &b.collection_id,
        In::BodiesQuery(q) => &q.collection_id,
        In::BodyRead(r) => &r.collection_id,
        In::Hello(_)
        | In::CollectionsFound(_)
        | In::Heartbeat(_)
        | In::OutboxPull(_)
        | In::OutboxReport(_) => "",
    }
}

/// One answer in batches: each made by `make` with whether another follows.
fn batched<T>(
    request_id: u64,
    batches: Vec<Vec<T>>,
    make: impl Fn(Vec<T>, bool) -> Out,
) -> Vec<pb::GatewayMessage> {
    let n = batches.len();
    batches
        .into_iter()
        .enumerate()
        .map(|(i, b)| msg(request_id, make(b, i + 1 < n)))
        .collect()
}

fn msg(request_id: u64, body: Out) -> pb::GatewayMessage {
    pb::GatewayMessage {
        request_id,
        body: Some(body),
    }
}

fn failure(request_id: u64, message: impl Into<String>) -> pb::GatewayMessage {
    msg(
        request_id,
        Out::Failure(pb::Failure {
            message: message.into(),
        }),
    )
}

/// The properties clients set that the back end does not have yet.
fn pending_props(c: &Collection) -> Vec<pb::CollectionProperty> {
    use postern_davxml::{APPLE, CALDAV, CARDDAV, DAV, escape};
    let p = &c.props;
    if p.version <= p.applied {
        return Vec::new();
    }
    let prop = |ns: &str, name: &str, markup: String| pb::CollectionProperty {
        namespace: ns.into(),
        name: name.into(),
        markup,
    };
    let mut out = vec![prop(DAV, "displayname", escape(&c.display_name))];
    if !p.color.is_empty() {
        out.push(prop(APPLE, "calendar-color", escape(&p.color)));
    }
    if let Some(o) = p.order {
        out.push(prop(APPLE, "calendar-order", o.to_string()));
    }
    if !p.description.is_empty() {
        match c.kind.parse::<CollectionKind>() {
            Ok(CollectionKind::AddressBook) => out.push(prop(
                CARDDAV,
                "addressbook-description",
                escape(&p.description),
            )),
            _ => out.push(prop(CALDAV, "calendar-description", escape(&p.description))),
        }
    }
    if !p.timezone.is_empty() {
        out.push(prop(CALDAV, "calendar-timezone", escape(&p.timezone)));
    }
    for (key, markup) in &p.dead {
        if let Some((ns, name)) = key.strip_prefix('{').and_then(|k| k.split_once('}')) {
            out.push(prop(ns, name, markup.clone()));
        }
    }
    out
}

/// A word kept in the database (`two-way`, `mailbox`) as its wire enum; a word
/// this build does not know goes out unspecified, and the connector refuses it.
fn wire_word<T: std::str::FromStr>(word: &str, wire: impl Fn(T) -> i32) -> i32 {
    word.parse::<T>().map_or(0, wire)
}

fn assigned(c: &Collection) -> pb::AssignedCollection {
    pb::AssignedCollection {
        properties: pending_props(c),
        props_version: c.props.version.max(0) as u64,
        components: c.props.components.clone(),
        collection_id: c.id.to_string(),
        backend_href: c.backend_href.clone(),
        kind: wire_word(&c.kind, |k: CollectionKind| {
            pb::CollectionKind::from(k) as i32
        }),
        mode: wire_word(&c.mode, |m: Mode| pb::SyncMode::from(m) as i32),
        conflict: wire_word(&c.conflict, |p: ConflictPolicy| {
            pb::ConflictPolicy::from(p) as i32
        }),
        paused: c.paused_reason.is_some(),
        backend_state: c.backend_state.clone(),
        cursor: c.cursor.max(0) as u64,
        create: c.create_pending,
        rename_to: c.rename_to.clone().unwrap_or_default(),
        delete: c.delete_pending,
        display_name: c.display_name.clone(),
    }
}

impl Session {
    /// A session for a verified connector.
    pub fn new(
        store: Store,
        settings: LinkSettings,
        claims: Claims,
        tenant_name: String,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Session {
            store,
            settings,
            claims,
            tenant_name,
            instance: Arc::new(RwLock::new(String::new())),
            sources: Arc::default(),
            collections: Arc::default(),
            metrics,
            held: Arc::default(),
            draining: Arc::default(),
            closed: Arc::default(),
        }
    }

    /// True when `collection` is assigned on this stream (nudges are forwarded only then).
    pub async fn watches(&self, collection: Uuid) -> bool {
        self.collections.read().await.contains(&collection)
    }

    /// True when `collection` belongs to one of this stream's sources, even if it is
    /// not assigned yet (a client just created it): the nudge then makes the
    /// connector ask for a fresh assignment.
    pub async fn concerns(&self, collection: Uuid) -> bool {
        if self.watches(collection).await {
            return true;
        }
        let Ok(Some(source)) = self
            .store
            .collection_source(self.tenant(), collection)
            .await
        else {
            return false;
        };
        self.sources.read().await.values().any(|s| s.id == source)
    }

    /// Stops handing out leases: the gateway is shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, SeqCst);
    }

    /// True when no round of this stream holds a lease.
    pub async fn holds_nothing(&self) -> bool {
        self.held.read().await.is_empty()
    }

    /// The instance id from Hello.
    pub async fn instance(&self) -> String {
        self.instance.read().await.clone()
    }

    fn tenant(&self) -> Uuid {
        self.claims.tid
    }

    /// Answers one message. Errors of the store become `Failure` answers: the stream
    /// stays up and the connector retries its round later.
    ///
    /// The work runs in a span that continues the connector's trace when the message
    /// carries one (heartbeats are not traced).
    pub async fn handle(&self, m: pb::ConnectorMessage, address: &str) -> Vec<pb::GatewayMessage> {
        let span = match &m.body {
            None | Some(In::Heartbeat(_)) => tracing::Span::none(),
            Some(body) => {
                let span = tracing::info_span!(
                    "link",
                    otel.name = message_name(body),
                    otel.kind = "server",
                    connector = %self.claims.name,
                    request_id = m.request_id,
                    collection = collection_of(body),
                );
                postern_telemetry::continue_from(&span, &m.trace_context);
                span
            }
        };
        self.answer(m, address).instrument(span).await
    }

    async fn answer(&self, m: pb::ConnectorMessage, address: &str) -> Vec<pb::GatewayMessage> {
        let rid = m.request_id;
        let Some(body) = m.body else {
            return vec![failure(rid, "empty message")];
        };
        let result = match body {
            In::Hello(h) => self.hello(rid, h, address).await,
            In::CollectionsFound(f) => self.collections_found(rid, f).await,
            In::Lease(l) => self.lease(rid, l).await,
            In::IndexPull(p) => self.index(rid, p).await,
            In::JournalPull(p) => self.journal(rid, p).await,
            In::ChangePacket(p) => self.packet(rid, p).await,
            In::Heartbeat(_) => {
                let _ = self
                    .store
                    .touch_connector(self.tenant(), self.claims.sub, "", address)
                    .await;
                Ok(vec![msg(
                    rid,
                    Out::Heartbeat(pb::Heartbeat {
                        sent_at_ms: chrono::Utc::now().timestamp_millis(),
                    }),
                )])
            }
            In::RoundReport(r) => self.round_report(r).await.map(|()| vec![]),
            In::RoundProgress(p) => self.round_progress(p).await.map(|()| vec![]),
            In::BodyPart(b) => self.body_part(rid, b).await,
            In::BodiesQuery(q) => self.bodies_query(rid, q).await,
            In::BodyRead(r) => self.body_read(rid, r).await,
            In::OutboxPull(p) => self.outbox_pull(rid, p).await,
            In::OutboxReport(r) => self.outbox_report(rid, r).await,
        };
        match result {
            Ok(out) => out,
            Err(e) => {
                warn!(connector = %self.claims.name, error = %e, "request failed");
                vec![failure(rid, e.to_string())]
            }
        }
    }

    async fn hello(
        &self,
        rid: u64,
        h: pb::Hello,
        address: &str,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        if h.instance_id.is_empty() {
            return Ok(vec![failure(rid, "hello needs an instance_id")]);
        }
        *self.instance.write().await = h.instance_id.clone();
        let tenant = self.tenant();
        self.store
            .touch_connector(tenant, self.claims.sub, &h.version, address)
            .await?;
        let mut out = Vec::new();
        let mut sources = self.sources.write().await;
        for s in &h.sources {
            let (user, user_tenant) = match s.user.split_once('@') {
                Some((u, t)) => (u, Some(t)),
                None => (s.user.as_str(), None),
            };
            if user_tenant.is_some_and(|t| t != self.tenant_name) {
                out.push(failure(
                    0,
                    format!(
                        "source {}: user {} is not in tenant {}",
                        s.name, s.user, self.tenant_name
                    ),
                ));
                continue;
            }
            let parsed = (pb::enums::mode(s.mode), pb::enums::policy(s.conflict));
            let (mode, conflict) = match parsed {
                (Some(m), Some(c)) => (m, c),
                _ => {
                    out.push(failure(
                        0,
                        format!(
                            "source {}: no mode or conflict policy this gateway knows ({}, {})",
                            s.name, s.mode, s.conflict
                        ),
                    ));
                    continue;
                }
            };
            let Some(kind) = pb::SourceKind::try_from(s.kind)
                .ok()
                .and_then(pb::SourceKind::word)
            else {
                out.push(failure(
                    0,
                    format!("source {}: unknown kind {}", s.name, s.kind),
                ));
                continue;
            };
            let user_id = match self.store.user_id(tenant, user).await {
                Ok(id) => id,
                Err(StoreError::NotFound(_)) => {
                    out.push(failure(
                        0,
                        format!(
                            "source {}: no user {user:?} in tenant {}; add it with `postern-gateway admin user add --tenant {} {user}`",
                            s.name, self.tenant_name, self.tenant_name
                        ),
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let spec = SourceSpec {
                name: s.name.clone(),
                kind: kind.to_string(),
                user_id,
                mode,
                conflict,
            };
            let id = self
                .store
                .upsert_source(tenant, self.claims.sub, &spec)
                .await?;
            // A kind the connector cannot sync is said out loud, not skipped quietly.
            let problem = if h.capabilities.iter().any(|c| c == kind) {
                String::new()
            } else {
                warn!(connector = %self.claims.name, source = %s.name, kind, "a source this connector cannot sync");
                format!(
                    "connector {} (version {}) cannot sync {kind} sources; upgrade it",
                    self.claims.name, h.version
                )
            };
            self.store.set_source_problem(tenant, id, &problem).await?;
            sources.insert(
                s.name.clone(),
                SourceRef {
                    id,
                    user: user_id,
                    smtp: kind == "smtp",
                },
            );
        }
        info!(connector = %self.claims.name, tenant = %self.tenant_name, version = %h.version, sources = sources.len(), "connector said hello");
        out.insert(
            0,
            msg(
                rid,
                Out::Welcome(pb::Welcome {
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    connector: self.claims.name.clone(),
                    tenant: self.tenant_name.clone(),
                    lease_ttl_ms: self.settings.lease_ttl.as_millis() as u64,
                    max_packet_ops: 2000,
                    max_message_bytes: self.settings.max_message_bytes as u64,
                }),
            ),
        );
        Ok(out)
    }

    /// The collection a request names, if it is assigned to this stream.
    async fn own(&self, rid: u64, id: &str) -> Result<Uuid, pb::GatewayMessage> {
        self.assigned(id).await.ok_or_else(|| {
            failure(
                rid,
                format!("collection {id:?} is not assigned to this connector"),
            )
        })
    }

    /// The collection `id` names, when it is assigned to this connector.
    async fn assigned(&self, id: &str) -> Option<Uuid> {
        let id = Uuid::parse_str(id).ok()?;
        self.watches(id).await.then_some(id)
    }

    async fn index(
        &self,
        rid: u64,
        p: pb::IndexPull,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        let coll = match self.own(rid, &p.collection_id).await {
            Ok(c) => c,
            Err(f) => return Ok(vec![f]),
        };
        let ids: Vec<Uuid> = p
            .item_ids
            .iter()
            .filter_map(|i| Uuid::parse_str(i).ok())
            .collect();
        let only = p
            .selected
            .then_some((p.backend_hrefs.as_slice(), ids.as_slice()));
        let index = self.store.index(self.tenant(), coll, only).await?;
        // Batches of bounded size; every batch names the same head, the last says so.
        let mut batches: Vec<Vec<pb::IndexEntry>> = index
            .entries
            .chunks(INDEX_BATCH)
            .map(|c| {
                c.iter()
                    .map(|e| {
                        if p.hrefs_only {
                            pb::IndexEntry {
                                backend_href: e.backend_href.clone(),
                                ..Default::default()
                            }
                        } else {
                            index_to_pb(e)
                        }
                    })
                    .collect()
            })
            .collect();
        if batches.is_empty() {
            batches.push(Vec::new());
        }
        Ok(batched(rid, batches, |entries, more| {
            Out::IndexBatch(pb::IndexBatch {
                collection_id: p.collection_id.clone(),
                entries,
                more,
                total: index.total,
            })
        }))
    }

    async fn journal(
        &self,
        rid: u64,
        p: pb::JournalPull,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        let coll = match self.own(rid, &p.collection_id).await {
            Ok(c) => c,
            Err(f) => return Ok(vec![f]),
        };
        let (pending, head) = self.store.pending_changes(self.tenant(), coll).await?;
        let limit = match p.limit as usize {
            0 => self.settings.batch_changes,
            n => n.min(self.settings.batch_changes),
        };
        // Batches of bounded size; every batch names the same head, the last says so.
        let mut batches: Vec<Vec<pb::Change>> = vec![Vec::new()];
        let mut bytes = 0;
        for mut change in pending.iter().map(pending_to_pb) {
            // A merge base that would make one change larger than a batch is left
            // out: the connector then settles that conflict by newest-wins.
            if change.content.len() + change.base_content.len() > self.settings.batch_bytes {
                change.base_content.clear();
            }
            let size = change.content.len() + change.base_content.len();
            let current = batches.last().map_or(0, Vec::len);
            if current >= limit || (current > 0 && bytes + size > self.settings.batch_bytes) {
                batches.push(Vec::new());
                bytes = 0;
            }
            bytes += size;
            if let Some(b) = batches.last_mut() {
                b.push(change);
            }
        }
        let bodies: usize = batches
            .iter()
            .flatten()
            .filter(|c| c.content_type == MESSAGE)
            .map(|c| c.content.len())
            .sum();
        if bodies > 0 {
            self.metrics
                .mail_body_bytes
                .get_or_create(&crate::metrics::Direction {
                    direction: "to_backend".into(),
                })
                .inc_by(bodies as u64);
        }
        Ok(batched(rid, batches, |changes, more| {
            Out::JournalBatch(pb::JournalBatch {
                collection_id: p.collection_id.clone(),
                changes,
                head: head.max(0) as u64,
                more,
            })
        }))
    }

    async fn packet(
        &self,
        rid: u64,
        p: pb::ChangePacket,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        if let Err(f) = self.own(rid, &p.collection_id).await {
            return Ok(vec![f]);
        }
        let rejected = |reason: pb::rejected::Reason, detail: String| {
            msg(
                rid,
                Out::Verdict(pb::Verdict {
                    collection_id: p.collection_id.clone(),
                    outcome: Some(pb::verdict::Outcome::Rejected(pb::Rejected {
                        reason: reason as i32,
                        detail,
                    })),
                }),
            )
        };
        let packet = match Packet::try_from(&p) {
            Ok(packet) => packet,
            Err(e) => return Ok(vec![rejected(pb::rejected::Reason::Invalid, e.to_string())]),
        };
        let refused = packet
            .changes
            .iter()
            .filter(|c| matches!(c, crate::store::packet::PacketChange::Refused { .. }))
            .count() as u64;
        let outcome = match self.store.apply_packet(self.tenant(), &packet).await {
            Ok(o) => o,
            Err(StoreError::Invalid(why)) => PacketOutcome::Invalid(why),
            Err(e) => return Err(e),
        };
        let label = match &outcome {
            PacketOutcome::Accepted { .. } => "accepted",
            PacketOutcome::StaleBase(_) => "stale_base",
            PacketOutcome::StaleFence(_) => "stale_fence",
            PacketOutcome::Invalid(_) => "invalid",
        };
        self.metrics
            .packets
            .get_or_create(&crate::metrics::Outcome {
                outcome: label.into(),
            })
            .inc();
        if matches!(outcome, PacketOutcome::StaleFence(_)) {
            self.metrics.lease_expiries.inc();
        }
        if matches!(outcome, PacketOutcome::Accepted { .. }) {
            let bodies: usize = p
                .changes
                .iter()
                .filter(|c| c.content_type == MESSAGE)
                .map(|c| c.content.len())
                .sum();
            if bodies > 0 {
                self.metrics
                    .mail_body_bytes
                    .get_or_create(&crate::metrics::Direction {
                        direction: "to_gateway".into(),
                    })
                    .inc_by(bodies as u64);
            }
        }
        Ok(vec![match outcome {
            PacketOutcome::Accepted { cursor, item_ids } => {
                if refused > 0 {
                    self.metrics.items_refused.inc_by(refused);
                    warn!(collection = %packet.collection, refused, "the back end refused items; set aside");
                }
                debug!(collection = %packet.collection, changes = packet.changes.len(), cursor, "packet accepted");
                msg(
                    rid,
                    Out::Verdict(pb::Verdict {
                        collection_id: p.collection_id.clone(),
                        outcome: Some(pb::verdict::Outcome::Accepted(pb::Accepted {
                            cursor: cursor.max(0) as u64,
                            item_ids: item_ids
                                .iter()
                                .map(|i| i.map(|u| u.to_string()).unwrap_or_default())
                                .collect(),
                        })),
                    }),
                )
            }
            PacketOutcome::StaleBase(d) => {
                info!(collection = %packet.collection, detail = %d, "stale base");
                rejected(pb::rejected::Reason::StaleBase, d)
            }
            PacketOutcome::StaleFence(d) => {
                warn!(collection = %packet.collection, detail = %d, "stale fence");
                rejected(pb::rejected::Reason::StaleFence, d)
            }
            PacketOutcome::Invalid(d) => rejected(pb::rejected::Reason::Invalid, d),
        }])
    }

    async fn round_report(&self, r: pb::RoundReport) -> Result<(), StoreError> {
        let Some(coll) = self.assigned(&r.collection_id).await else {
            return Ok(());
        };
        // A word from a fixed set: a connector cannot add metric labels or status
        // words of its own.
        let outcome = match r.result() {
            pb::RoundOutcome::Ok => "ok",
            pb::RoundOutcome::Conflict => "conflict",
            pb::RoundOutcome::Paused => "paused",
            pb::RoundOutcome::Error => "error",
            pb::RoundOutcome::Unspecified => "unknown",
        };
        let m = &self.metrics;
        m.rounds
            .get_or_create(&crate::metrics::Outcome {
                outcome: outcome.into(),
            })
            .inc();
        m.round_seconds.observe(r.duration_ms as f64 / 1000.0);
        let direction = |d: &str| crate::metrics::Direction {
            direction: d.into(),
        };
        m.items
            .get_or_create(&direction("to_gateway"))
            .inc_by(u64::from(r.to_gateway));
        m.items
            .get_or_create(&direction("to_backend"))
            .inc_by(u64::from(r.to_backend));
        m.conflicts.inc_by(u64::from(r.conflicts));
        let detail = if r.detail.is_empty() {
            format!(
                "{} to gateway, {} to back end, {} conflicts",
                r.to_gateway, r.to_backend, r.conflicts
            )
        } else {
            r.detail
        };
        self.store
            .record_round(self.tenant(), coll, outcome, &detail, r.fencing_token)
            .await
    }

    async fn round_progress(&self, p: pb::RoundProgress) -> Result<(), StoreError> {
        let Some(coll) = self.assigned(&p.collection_id).await else {
            return Ok(());
        };
        let phase: String = p.phase.chars().take(32).collect();
        self.store
            .record_progress(self.tenant(), coll, &phase, p.done, p.total)
            .await
    }
}
