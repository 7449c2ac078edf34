//! The engine: keeps the link up and runs rounds.
//!
//! [`run`] loops forever: connect (jittered exponential backoff between attempts),
//! say Hello, then per source, every interval, discover the back-end collections,
//! report them, receive the assignment, and run a round on each collection; a round
//! runs at once too when the gateway nudges. When the link drops, every source task stops and the
//! loop reconnects; everything needed to resume (cursor, back-end state, index) is on
//! the gateway, so nothing is re-downloaded.

mod body_read;
mod index;
mod mail_import;
mod mail_round;
mod outbox;
mod packets;
pub mod round;

use std::collections::HashMap;
use std::time::Duration;

use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_core::ids::Href;
use postern_proto as pb;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{Instrument, error, info, warn};

use crate::backends::{AnyBackend, Backend, NewCollection, Property};
use crate::config::{Config, Source};
use crate::link::{Link, LinkError};
use round::{CollectionState, RoundError, Trigger};

/// Time between heartbeats on an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// What a source's task needs.
#[derive(Clone)]
pub struct SourceCtx {
    /// The link to the gateway.
    pub link: Link,
    /// The source's config.
    pub source: Source,
    /// Its back end.
    pub backend: std::sync::Arc<AnyBackend>,
    /// Lease time-to-live granted by the gateway.
    pub lease_ttl: Duration,
    /// The largest message the gateway accepts, in bytes.
    pub max_message: usize,
    /// The most changes the gateway takes in one packet (its Welcome; 0: no word).
    pub max_packet_ops: usize,
}

/// The first wait before reconnecting, and the wait after a healthy session.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between attempts.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// A session welcomed by the gateway and up at least this long was healthy: the next
/// attempt starts over from [`FIRST_RETRY`]. (A gateway that welcomes and drops at
/// once keeps the waits growing, so a fleet of connectors does not hammer it.)
const HEALTHY: Duration = Duration::from_secs(5);

/// Waits between connection attempts: exponential, jittered, starting over after a
/// healthy session.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_RETRY }
    }
}

impl Backoff {
    /// The wait before the next attempt (jittered ±50 %), after a session that was
    /// welcomed and lasted `up` (`None`: it never got that far).
    pub fn after(&mut self, up: Option<Duration>) -> Duration {
        if up.is_some_and(|d| d >= HEALTHY) {
            self.next = FIRST_RETRY;
        }
        let wait = self.next.mul_f64(rand::rng().random_range(0.5..1.5));
        self.next = (self.next * 2).min(MAX_RETRY);
        wait
    }
}

/// Runs the connector until the process is stopped, or until the gateway refuses the
/// token (which only an operator can fix).
pub async fn run(config: Config) -> Result<(), LinkError> {
    let instance = uuid::Uuid::new_v4().to_string();
    let mut backoff = Backoff::default();
    loop {
        let mut welcomed = None;
        match session(&config, &instance, &mut welcomed).await {
            Err(LinkError::Unauthenticated(m)) => {
                error!(reason = %m, "the gateway refused this connector; enrol it again and update the token");
                return Err(LinkError::Unauthenticated(m));
            }
            Err(e) => warn!(error = %e, "link failed"),
            Ok(()) => {}
        }
        let wait = backoff.after(welcomed.map(|t: std::time::Instant| t.elapsed()));
        info!(retry_in = ?wait, "reconnecting to the gateway");
        tokio::time::sleep(wait).await;
    }
}

/// One connection's life: returns when the link ends. `welcomed` is set to when the
/// gateway welcomed this connector.
async fn session(
    config: &Config,
    instance: &str,
    welcomed: &mut Option<std::time::Instant>,
) -> Result<(), LinkError> {
    let (link, mut nudges) = Link::connect(&config.gateway, &config.token, &config.tls).await?;
    let hello = pb::Hello {
        version: env!("CARGO_PKG_VERSION").to_string(),
        capabilities: crate::backends::KINDS
            .iter()
            .map(|k| k.to_string())
            .collect(),
        instance_id: instance.to_string(),
        sources: config
            .sources
            .iter()
            .map(|s| pb::SourceInfo {
                name: s.name.clone(),
                kind: pb::SourceKind::from_word(s.kind.as_str()) as i32,
                user: s.user.clone(),
                mode: pb::SyncMode::from(s.mode) as i32,
                conflict: pb::ConflictPolicy::from(s.conflict) as i32,
            })
            .collect(),
    };
    let Ans::Welcome(welcome) = link.ask(Req::Hello(hello)).await? else {
        return Err(LinkError::Unexpected("no welcome".into()));
    };
    *welcomed = Some(std::time::Instant::now());
    info!(gateway = %config.gateway, tenant = %welcome.tenant, connector = %welcome.connector, "connected to the gateway");
    let lease_ttl = Duration::from_millis(welcome.lease_ttl_ms.max(1000));
    // Gateways that do not say accepted 64 MiB.
    let max_message = match welcome.max_message_bytes {
        0 => 64 << 20,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };

    let mut tasks = JoinSet::new();
    let mut routes: HashMap<String, mpsc::UnboundedSender<NudgeOrRoute>> = HashMap::new();
    let (route_tx, mut route_rx) =
        mpsc::unbounded_channel::<(String, mpsc::UnboundedSender<NudgeOrRoute>)>();
    let mut source_inboxes: Vec<mpsc::UnboundedSender<NudgeOrRoute>> = Vec::new();
    // The relay loop of each `smtp` source, woken when its user submits mail.
    let mut outboxes: HashMap<String, std::sync::Arc<tokio::sync::Notify>> = HashMap::new();
    for source in &config.sources {
        if source.kind == crate::config::SourceKind::Smtp {
            match crate::backends::smtp::SmtpRelay::new(source) {
                Ok(relay) => {
                    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
                    outboxes.insert(source.name.clone(), wake.clone());
                    tasks.spawn(outbox::outbox_loop(
                        link.clone(),
                        source.clone(),
                        relay,
                        max_message,
                        wake,
                    ));
                }
                Err(e) => return Err(LinkError::Failure(e)),
            }
            continue;
        }
        let backend = match AnyBackend::open(source) {
            Ok(Some(b)) => b,
            Ok(None) => {
                // Said at error level here, and to the gateway (the Hello's
                // capabilities do not include this kind): `admin status` shows the
                // source as not synced.
                error!(source = %source.name, kind = %source.kind.as_str(), "this connector version cannot sync sources of this kind; the source is NOT synced");
                continue;
            }
            Err(e) => return Err(LinkError::Failure(e.to_string())),
        };
        let ctx = SourceCtx {
            link: link.clone(),
            source: source.clone(),
            backend: std::sync::Arc::new(backend),
            lease_ttl,
            max_message,
            max_packet_ops: welcome.max_packet_ops as usize,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        source_inboxes.push(tx.clone());
        tasks.spawn(source_loop(ctx, rx, tx, route_tx.clone()));
    }
    drop(route_tx);
    // Heartbeats keep idle streams alive through proxies and show the operator that
    // the connector is there (`connector list`: last seen).
    let beat = link.clone();
    tasks.spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            if beat
                .ask(Req::Heartbeat(pb::Heartbeat {
                    sent_at_ms: now.as_millis() as i64,
                }))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    loop {
        tokio::select! {
            _ = link.closed() => break,
            Some((coll, tx)) = route_rx.recv() => { routes.insert(coll, tx); }
            Some(nudge) = nudges.recv() => {
                if !nudge.outbox_source.is_empty() {
                    if let Some(wake) = outboxes.get(&nudge.outbox_source) {
                        wake.notify_one();
                    }
                    continue;
                }
                let coll = nudge.collection_id;
                match routes.get(&coll) {
                    Some(tx) => { let _ = tx.send(NudgeOrRoute::Nudge(coll)); }
                    // A collection this connector does not know yet (a client made it):
                    // every source asks for a fresh assignment.
                    None => for tx in &source_inboxes { let _ = tx.send(NudgeOrRoute::Refresh); },
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done { error!(error = %e, "source task failed"); }
            }
        }
    }
    tasks.shutdown().await;
    Err(LinkError::Down("stream ended".into()))
}

/// Messages to a source task.
#[derive(Debug)]
enum NudgeOrRoute {
    /// The gateway has changes for this collection.
    Nudge(String),
    /// The gateway has a collection this connector does not know: assign again.
    Refresh,
}

/// Discovers, reports, and syncs one source's collections until the link ends.
async fn source_loop(
    ctx: SourceCtx,
    mut inbox: mpsc::UnboundedReceiver<NudgeOrRoute>,
    me: mpsc::UnboundedSender<NudgeOrRoute>,
    routes: mpsc::UnboundedSender<(String, mpsc::UnboundedSender<NudgeOrRoute>)>,
) {
    let name = ctx.source.name.clone();
    let mut collections: Vec<CollectionState> = Vec::new();
    // Mailboxes watched for changes (IDLE), each by a task of its own that nudges
    // this loop; they stop with it.
    let mut watchers = JoinSet::new();
    let mut watched: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        // Discovery every interval, so a collection made on the back end appears
        // within one.
        match assign(&ctx).await {
            Ok(assigned) => {
                for c in &assigned {
                    let _ = routes.send((c.id.clone(), me.clone()));
                }
                for c in to_watch(&ctx, &assigned) {
                    if watched.insert(c.id.clone()) {
                        watchers.spawn(watch(
                            ctx.clone(),
                            c.id.clone(),
                            c.href.clone(),
                            me.clone(),
                        ));
                    }
                }
                // Each round takes the gateway's current state with its lease.
                collections = assigned;
            }
            Err(e) => {
                warn!(source = %name, error = %e, "discovery failed; retrying next interval")
            }
        }
        let mut changed = false;
        for coll in collections.iter_mut() {
            changed |= run_round(&ctx, coll, Trigger::Interval).await;
        }
        if changed {
            continue;
        }
        // Wait for the interval, or a nudge; a nudge runs only its collection.
        let deadline = tokio::time::sleep(ctx.source.interval);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                msg = inbox.recv() => match msg {
                    Some(NudgeOrRoute::Nudge(id)) => {
                        if let Some(coll) = collections.iter_mut().find(|c| c.id == id) {
                            coll.paused = false;
                            if run_round(&ctx, coll, Trigger::Nudge).await {
                                break;
                            }
                        }
                    }
                    Some(NudgeOrRoute::Refresh) => break,
                    None => return,
                },
            }
        }
    }
}

/// The longest IDLE before it is renewed (servers end one after 30 minutes).
const IDLE_MAX: Duration = Duration::from_secs(25 * 60);

/// The mailboxes of a mail source to watch: INBOX first, then in discovery order, as
/// many as the source's `idle_connections`.
fn to_watch<'a>(ctx: &SourceCtx, assigned: &'a [CollectionState]) -> Vec<&'a CollectionState> {
    if ctx.backend.kind() != postern_core::model::CollectionKind::Mailbox {
        return Vec::new();
    }
    let mut order: Vec<&CollectionState> = assigned.iter().filter(|c| !c.paused).collect();
    order.sort_by_key(|c| c.role != Some(postern_core::mail::Role::Inbox));
    order.truncate(ctx.source.idle_connections);
    order
}

/// Waits for changes of one mailbox on the back end and nudges its source's loop,
/// which runs a round of it at once. A failure waits a little and tries again.
async fn watch(ctx: SourceCtx, id: String, href: Href, me: mpsc::UnboundedSender<NudgeOrRoute>) {
    use crate::backends::MailBackend;
    let mut pause = Duration::from_secs(1);
    loop {
        match ctx.backend.watch(&href, IDLE_MAX).await {
            Ok(changed) => {
                pause = Duration::from_secs(1);
                if changed && me.send(NudgeOrRoute::Nudge(id.clone())).is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!(collection = %href, error = %e, "watching the mailbox failed; polling meanwhile");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// Runs a round and reports it; true when the gateway says the collection itself
/// changed (a client created or deleted it) and the assignment must be asked again.
///
/// Each round is the root of its own trace: the gateway continues it for every message
/// the round sends (see `postern-telemetry`).
async fn run_round(ctx: &SourceCtx, coll: &mut CollectionState, trigger: Trigger) -> bool {
    if ctx.link.is_closed() {
        return false;
    }
    let span = tracing::info_span!(
        parent: None,
        "sync round",
        source = %ctx.source.name,
        collection = %coll.href,
        trigger = ?trigger,
        outcome = tracing::field::Empty,
    );
    round_and_report(ctx, coll, trigger, &span)
        .instrument(span.clone())
        .await
}

async fn round_and_report(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    trigger: Trigger,
    span: &tracing::Span,
) -> bool {
    let started = std::time::Instant::now();
    let result = round::run(ctx, coll, trigger).await;
    let (outcome, detail, stats) = match &result {
        Ok(s) => {
            if s.to_gateway + s.to_backend + s.conflicts + s.merged > 0 {
                info!(collection = %coll.href, to_gateway = s.to_gateway, to_backend = s.to_backend,
                      conflicts = s.conflicts, merged = s.merged, took = ?started.elapsed(), "round done");
            } else {
                tracing::debug!(collection = %coll.href, took_us = started.elapsed().as_micros() as u64, "idle round");
            }
            let detail = if s.refused + s.too_large > 0 {
                format!(
                    "{} to gateway, {} to back end, {} conflicts, {} refused by the back end and set aside, {} too large for the gateway",
                    s.to_gateway, s.to_backend, s.conflicts, s.refused, s.too_large
                )
            } else {
                String::new()
            };
            let outcome = if s.conflicts > 0 {
                pb::RoundOutcome::Conflict
            } else {
                pb::RoundOutcome::Ok
            };
            (outcome, detail, s.clone())
        }
        Err(RoundError::NoLease(why, reason)) => {
            span.record("outcome", format!("no lease: {reason}"));
            match why {
                pb::DenyReason::Changed => return true,
                pb::DenyReason::Held => {}
                _ => info!(collection = %coll.href, reason = %reason, "not syncing"),
            }
            return false;
        }
        Err(RoundError::Paused(r)) => (pb::RoundOutcome::Paused, r.clone(), Default::default()),
        Err(RoundError::Link(LinkError::Failure(m))) => {
            warn!(collection = %coll.href, error = %m, "the gateway could not serve the round");
            (pb::RoundOutcome::Error, m.clone(), Default::default())
        }
        Err(RoundError::Link(_)) => return false,
        Err(e) => {
            warn!(collection = %coll.href, error = %e, "round failed");
            (pb::RoundOutcome::Error, e.to_string(), Default::default())
        }
    };
    span.record("outcome", word(outcome));
    let report = pb::RoundReport {
        collection_id: coll.id.clone(),
        result: outcome as i32,
        detail,
        to_gateway: stats.to_gateway,
        to_backend: stats.to_backend,
        conflicts: stats.conflicts,
        duration_ms: started.elapsed().as_millis() as u64,
        fencing_token: stats.fencing_token,
    };
    let _ = ctx.link.tell(Req::RoundReport(report)).await;
    false
}

/// A round's outcome as the word traces and logs show.
fn word(outcome: pb::RoundOutcome) -> &'static str {
    match outcome {
        pb::RoundOutcome::Ok => "ok",
        pb::RoundOutcome::Conflict => "conflict",
        pb::RoundOutcome::Paused => "paused",
        pb::RoundOutcome::Error => "error",
        pb::RoundOutcome::Unspecified => "unknown",
    }
}

/// Discovery, then the gateway's assignment for what was found. Collections clients
/// created or deleted on the gateway are created or deleted on the back end here, and
/// reported, before any round touches them.
async fn assign(ctx: &SourceCtx) -> Result<Vec<CollectionState>, RoundError> {
    let discovered = ctx.backend.discover().await?;
    let found: Vec<_> = discovered
        .collections
        .into_iter()
        .filter(|f| {
            !ctx.source
                .exclude
                .iter()
                .any(|x| x == &f.href || x == &f.display_name)
        })
        .collect();
    info!(source = %ctx.source.name, collections = found.len(), "discovered back-end collections");
    let sync: HashMap<String, bool> = found
        .iter()
        .map(|f| (f.href.clone(), f.supports_sync))
        .collect();
    let roles: HashMap<String, postern_core::mail::Role> = found
        .iter()
        .filter_map(|f| Some((f.href.clone(), f.role?)))
        .collect();
    let msg = pb::CollectionsFound {
        source: ctx.source.name.clone(),
        collections: found
            .iter()
            .map(|f| pb::FoundCollection {
                backend_href: f.href.clone(),
                kind: pb::CollectionKind::from(ctx.backend.kind()) as i32,
                display_name: f.display_name.clone(),
                color: f.color.clone(),
                role: pb::enums::role_to_wire(f.role) as i32,
                delimiter: f.delimiter.map(String::from).unwrap_or_default(),
                ..Default::default()
            })
            .collect(),
        complete: true,
    };
    let mut assignment = ask_assignment(ctx, msg).await?;
    let changes = lifecycle(ctx, &discovered.homes, &assignment).await;
    if !changes.is_empty() {
        let msg = pb::CollectionsFound {
            source: ctx.source.name.clone(),
            collections: changes,
            complete: false,
        };
        assignment = ask_assignment(ctx, msg).await?;
    }
    let mut out = Vec::new();
    for c in assignment.collections {
        if c.create || c.delete {
            continue;
        }
        let Ok(href) = Href::new(c.backend_href.clone()) else {
            continue;
        };
        let (Some(mode), Some(policy)) = (pb::enums::mode(c.mode), pb::enums::policy(c.conflict))
        else {
            warn!(collection = %c.backend_href, "unknown mode or policy from the gateway; skipped");
            continue;
        };
        out.push(CollectionState {
            // A collection just made here supports what its siblings do.
            supports_sync: sync
                .get(&c.backend_href)
                .copied()
                .unwrap_or_else(|| sync.values().any(|s| *s)),
            id: c.collection_id,
            href,
            mode,
            policy,
            role: roles.get(&c.backend_href).copied(),
            backend_state: c.backend_state,
            paused: c.paused,
            held_until: None,
        });
    }
    Ok(out)
}

async fn ask_assignment(
    ctx: &SourceCtx,
    msg: pb::CollectionsFound,
) -> Result<pb::Assignment, RoundError> {
    match ctx.link.ask(Req::CollectionsFound(msg)).await? {
        Ans::Assignment(a) => Ok(a),
        other => Err(LinkError::Unexpected(format!("no assignment: {other:?}")).into()),
    }
}

/// The properties of an assigned collection to give the back end.
fn properties(c: &pb::AssignedCollection) -> Vec<Property> {
    c.properties
        .iter()
        .map(|p| Property {
            ns: p.namespace.clone(),
            name: p.name.clone(),
            markup: p.markup.clone(),
        })
        .collect()
}

/// Creates and deletes on the back end what clients created and deleted on the
/// gateway, and gives it the collection properties clients set; returns what to
/// report. A failure is logged and retried next time.
async fn lifecycle(
    ctx: &SourceCtx,
    homes: &[String],
    a: &pb::Assignment,
) -> Vec<pb::FoundCollection> {
    let mut done = Vec::new();
    for c in &a.collections {
        // Where a client's new collection is (or is being) made: derived from its id,
        // so a create retried, or a delete that overtook it, finds the same place.
        let made_at = || {
            ctx.backend
                .place_for(homes, &c.collection_id, &c.display_name)
        };
        if c.delete {
            // A delete wins, even over a create not yet confirmed (it may have
            // happened): remove whatever is at the collection's place.
            let href = if c.create {
                match made_at() {
                    Some(h) => h,
                    None => continue,
                }
            } else {
                c.backend_href.clone()
            };
            match ctx.backend.remove_collection(&href).await {
                Ok(()) => {
                    info!(collection = %href, "deleted on the back end for a client");
                    done.push(pb::FoundCollection {
                        backend_href: href,
                        kind: c.kind,
                        collection_id: c.collection_id.clone(),
                        deleted: true,
                        ..Default::default()
                    });
                }
                Err(e) => {
                    warn!(collection = %href, error = %e, "could not delete on the back end")
                }
            }
        } else if c.create {
            let Some(href) = made_at() else {
                warn!(source = %ctx.source.name, "no home collection to create a collection in");
                continue;
            };
            let props = properties(c);
            let new = NewCollection {
                display_name: &c.display_name,
                properties: &props,
                components: &c.components,
            };
            match ctx.backend.create_collection(&href, &new).await {
                Ok(()) => {
                    info!(collection = %href, "created on the back end for a client");
                    done.push(pb::FoundCollection {
                        backend_href: href,
                        kind: c.kind,
                        display_name: c.display_name.clone(),
                        collection_id: c.collection_id.clone(),
                        props_applied: c.props_version,
                        ..Default::default()
                    });
                }
                Err(e) => warn!(collection = %href, error = %e, "could not create on the back end"),
            }
        } else if !c.rename_to.is_empty() {
            // A mailbox a client renamed: renamed on the back end, then bound to its
            // new href.
            match ctx
                .backend
                .rename_collection(&c.backend_href, &c.rename_to)
                .await
            {
                Ok(href) => {
                    info!(collection = %c.backend_href, to = %href, "renamed on the back end for a client");
                    done.push(pb::FoundCollection {
                        backend_href: href,
                        kind: c.kind,
                        display_name: c.rename_to.clone(),
                        collection_id: c.collection_id.clone(),
                        ..Default::default()
                    });
                }
                Err(e) => {
                    warn!(collection = %c.backend_href, error = %e, "could not rename on the back end")
                }
            }
        } else if !c.properties.is_empty() {
            // Properties a client set on the gateway (PROPPATCH): give them to the
            // back end.
            match ctx
                .backend
                .set_properties(&c.backend_href, &properties(c))
                .await
            {
                Ok(()) => {
                    info!(collection = %c.backend_href, "collection properties set on the back end");
                    done.push(pb::FoundCollection {
                        backend_href: c.backend_href.clone(),
                        kind: c.kind,
                        collection_id: c.collection_id.clone(),
                        props_applied: c.props_version,
                        ..Default::default()
                    });
                }
                Err(e) => {
                    warn!(collection = %c.backend_href, error = %e, "could not set collection properties on the back end")
                }
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_starts_over_after_a_healthy_session() {
        let mut b = Backoff::default();
        let mut last = Duration::ZERO;
        for _ in 0..12 {
            last = b.after(None);
        }
        assert!(last >= MAX_RETRY / 2, "grows to the cap: {last:?}");
        // A session that only got a welcome and dropped at once does not reset it.
        assert!(b.after(Some(Duration::from_millis(10))) >= MAX_RETRY / 2);
        // A healthy one does.
        let after_healthy = b.after(Some(HEALTHY));
        assert!(
            after_healthy <= FIRST_RETRY.mul_f64(1.5),
            "{after_healthy:?}"
        );
    }
}
