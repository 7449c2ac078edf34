//! One round of one collection: the executor of the plan.
//!
//! lease → pull the gateway's pending changes → read the back end's changes since the
//! saved state → pull the index → guard → fetch → plan (pure, `postern-core`) → write
//! the back end → push change packets → release. A packet refused as `StaleBase`
//! (the gateway moved on while we planned) makes the round start over from the pull;
//! a `StaleFence` (the lease was lost) ends it without writing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_core::content;
use postern_core::guard::Guard;
use postern_core::ids::{Href, ItemId, Seq};
use postern_core::model::{ConflictPolicy, Mode};
use postern_core::plan::{
    self, Action, BackendChange, BackendSignal, GatewayChange, Known, Loser, Round as PlanRound,
};
use postern_proto as pb;
use tracing::{Instrument, info, warn};

use super::SourceCtx;
use super::packets::chunk_losers;
pub(super) use super::packets::{ENVELOPE, chunk, packet_budget};
use crate::backends::{Backend, BackendError, Observed, WriteOutcome};
use crate::link::LinkError;

/// How a round ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// Items created, changed or deleted on the gateway.
    pub to_gateway: u32,
    /// Items written or deleted on the back end.
    pub to_backend: u32,
    /// Conflicts settled (losers kept).
    pub conflicts: u32,
    /// The fencing token of the lease the round held.
    pub fencing_token: u64,
    /// Gateway changes left for a later round (the back end changed under us).
    pub deferred: u32,
    /// Gateway changes the back end refused, set aside.
    pub refused: u32,
    /// Back-end items too large for the gateway's largest message, left out.
    pub too_large: u32,
    /// Conflicts the `merge` policy merged (both sides' edits kept, no loser).
    pub merged: u32,
}

impl RoundStats {
    /// Adds what an earlier attempt of the same round did.
    fn add(&mut self, earlier: &RoundStats) {
        self.to_gateway += earlier.to_gateway;
        self.to_backend += earlier.to_backend;
        self.conflicts += earlier.conflicts;
        self.refused += earlier.refused;
        self.too_large += earlier.too_large;
        self.merged += earlier.merged;
    }
}

/// Why a round did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The back end failed; nothing was assumed about it.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The link failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Another instance holds the lease, or the collection is paused; the gateway's
    /// word for it, for logs.
    #[error("lease not granted: {1}")]
    NoLease(pb::DenyReason, String),
    /// The lease was lost during the round; nothing more was written.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// The gateway kept refusing our base.
    #[error("the gateway kept changing while we planned; will retry")]
    StaleBase,
    /// The mass-deletion guard paused the collection.
    #[error("{0}")]
    Paused(String),
    /// The gateway refused a packet as invalid (a bug: reported loudly).
    #[error("gateway refused a packet: {0}")]
    Invalid(String),
}

/// A collection as the connector tracks it between rounds.
#[derive(Debug, Clone)]
pub struct CollectionState {
    /// Gateway id.
    pub id: String,
    /// Back-end path.
    pub href: Href,
    /// Mode and policy, as assigned.
    pub mode: Mode,
    /// Conflict policy, as assigned.
    pub policy: ConflictPolicy,
    /// Back-end resume point (sync token), as last saved on the gateway.
    pub backend_state: String,
    /// Whether the back end supports sync-collection.
    pub supports_sync: bool,
    /// Paused by the guard or an operator.
    pub paused: bool,
    /// A mailbox's SPECIAL-USE role, as discovery found it (the deletion guard lets
    /// Trash and Junk be emptied).
    pub role: Option<postern_core::mail::Role>,
    /// Another instance holds the lease until then (its deny said so): rounds wait.
    pub held_until: Option<std::time::Instant>,
}

const MAX_ATTEMPTS: usize = 3;

/// The longest a collection waits before asking again for a lease another instance
/// holds.
const HELD_WAIT: Duration = Duration::from_secs(2);

/// What started a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The source's interval: read the back end and the gateway.
    Interval,
    /// A nudge: the gateway has changes for the back end. They are written at once,
    /// without reading the back end first (see [`attempt`]).
    Nudge,
}

/// Runs one round, holding the lease for its duration.
pub async fn run(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    trigger: Trigger,
) -> Result<RoundStats, RoundError> {
    // Another instance holds the lease and said for how long: no use asking before.
    if coll
        .held_until
        .is_some_and(|t| t > std::time::Instant::now())
    {
        return Err(RoundError::NoLease(
            pb::DenyReason::Held,
            "held by another instance".into(),
        ));
    }
    let mut ttl = ctx.lease_ttl;
    let token = match ctx
        .link
        .ask(lease_req(&coll.id, pb::lease_request::Action::Acquire, 0))
        .await?
    {
        Ans::LeaseGrant(g) => {
            coll.held_until = None;
            // The grant says how long this lease lives (the Welcome's is the default).
            if g.ttl_ms > 0 {
                ttl = Duration::from_millis(g.ttl_ms.max(1000));
            }
            // Work from the gateway's current state: an operator may have changed the
            // mode or policy, or forced a resync, since the assignment.
            coll.backend_state = g.backend_state.clone();
            if let (Some(mode), Some(policy)) =
                (pb::enums::mode(g.mode), pb::enums::policy(g.conflict))
            {
                coll.mode = mode;
                coll.policy = policy;
            }
            g.fencing_token
        }
        Ans::LeaseDeny(d) => {
            if d.why() == pb::DenyReason::Paused {
                coll.paused = true;
            }
            // Not before the deny says, nor later than HELD_WAIT: the holder usually
            // releases at the end of its round, well before its lease would expire.
            if d.why() == pb::DenyReason::Held && d.retry_after_ms > 0 {
                coll.held_until = Some(
                    std::time::Instant::now()
                        + Duration::from_millis(d.retry_after_ms).min(HELD_WAIT),
                );
            }
            return Err(RoundError::NoLease(d.why(), d.reason));
        }
        other => return Err(LinkError::Unexpected(format!("{other:?}")).into()),
    };
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = tokio::spawn(
        renew(ctx.link.clone(), coll.id.clone(), token, ttl, lost.clone()).in_current_span(),
    );
    let mut result = Err(RoundError::StaleBase);
    let mut light = trigger == Trigger::Nudge;
    let mut done = RoundStats::default();
    for _ in 0..MAX_ATTEMPTS {
        result = if ctx.backend.kind() == postern_core::model::CollectionKind::Mailbox {
            super::mail_round::attempt(ctx, coll, token, &lost).await
        } else {
            attempt(ctx, coll, token, &lost, light).await
        };
        match &result {
            Err(RoundError::StaleBase) => {
                info!(collection = %coll.href, "gateway moved on while we planned; pulling again");
            }
            Ok(s) if light && s.deferred > 0 => {
                info!(collection = %coll.href, "the back end changed too; reading it");
                done.add(s);
                light = false;
            }
            _ => break,
        }
    }
    renewer.abort();
    if let Ok(stats) = &mut result {
        stats.add(&done);
        stats.fencing_token = token;
    }
    let _ = ctx
        .link
        .ask(lease_req(
            &coll.id,
            pb::lease_request::Action::Release,
            token,
        ))
        .await;
    result
}

/// Tells the gateway how far a phase of the round got (`admin status`, `admin
/// collection resync --wait`). Advisory: dropped rather than waited for.
pub(super) fn progress(ctx: &SourceCtx, id: &str, phase: &str, done: usize, total: usize) {
    ctx.link.tell_if_free(Req::RoundProgress(pb::RoundProgress {
        collection_id: id.to_string(),
        phase: phase.to_string(),
        done: done as u64,
        total: total as u64,
    }));
}

fn lease_req(id: &str, action: pb::lease_request::Action, token: u64) -> Req {
    Req::Lease(pb::LeaseRequest {
        action: action as i32,
        collection_id: id.to_string(),
        fencing_token: token,
    })
}

/// Renews the lease every third of its time-to-live; marks it lost if refused.
async fn renew(
    link: crate::link::Link,
    id: String,
    token: u64,
    ttl: Duration,
    lost: Arc<AtomicBool>,
) {
    let every = (ttl / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        match link
            .ask(lease_req(&id, pb::lease_request::Action::Renew, token))
            .await
        {
            Ok(Ans::LeaseGrant(_)) => {}
            _ => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// What the back end changed, before fetching.
struct Detected {
    signals: Vec<BackendSignal>,
    /// The state to save when the round completes.
    new_state: String,
}

#[tracing::instrument(name = "read back end changes", skip_all)]
async fn detect(
    ctx: &SourceCtx,
    coll: &CollectionState,
    index: impl AsyncIndex,
) -> Result<Detected, RoundError> {
    // Nothing synced yet and nothing known: a first import.
    let fresh = coll.backend_state.is_empty() && index.get().await?.is_empty();
    let changes = ctx
        .backend
        .changes(&coll.href, &coll.backend_state, coll.supports_sync, fresh)
        .await?;
    let index = index.get().await?;
    let signals = match changes.observed {
        Observed::Delta(signals) => plan::new_signals(&index, signals),
        Observed::Listing(listed) => plan::diff_listing(&index, &listed),
    };
    Ok(Detected {
        signals,
        new_state: changes.new_state,
    })
}

/// The index, pulled from the gateway once per attempt, only when needed.
trait AsyncIndex {
    async fn get(&self) -> Result<Vec<Known>, RoundError>;
}

struct GatewayIndex<'a> {
    ctx: &'a SourceCtx,
    id: &'a str,
    cache: tokio::sync::OnceCell<Vec<Known>>,
}

impl AsyncIndex for &GatewayIndex<'_> {
    async fn get(&self) -> Result<Vec<Known>, RoundError> {
        self.cache
            .get_or_try_init(|| async {
                super::index::pull(self.ctx, self.id, super::index::Wanted::All)
                    .await?
                    .entries
                    .into_iter()
                    .map(|e| {
                        Ok(Known {
                            item_id: ItemId::new(e.item_id)
                                .map_err(|e| LinkError::Unexpected(e.to_string()))?,
                            href: Href::new(e.backend_href)
                                .map_err(|e| LinkError::Unexpected(e.to_string()))?,
                            version: e.backend_version,
                        })
                    })
                    .collect::<Result<Vec<_>, RoundError>>()
            })
            .await
            .cloned()
    }
}

#[tracing::instrument(name = "pull gateway changes", skip_all)]
async fn pull_gateway(ctx: &SourceCtx, id: &str) -> Result<(Vec<GatewayChange>, u64), RoundError> {
    let answers = ctx
        .link
        .request(Req::JournalPull(pb::JournalPull {
            collection_id: id.into(),
            limit: 0,
        }))
        .await?;
    let mut out = Vec::new();
    let mut head = 0;
    for a in answers {
        let Some(Ans::JournalBatch(b)) = a.body else {
            return Err(LinkError::Unexpected(format!("{:?}", a.body)).into());
        };
        head = b.head;
        for c in b.changes {
            let bad = |e: postern_core::ids::InvalidId| LinkError::Unexpected(e.to_string());
            out.push(GatewayChange {
                item_id: ItemId::new(c.item_id).map_err(bad)?,
                seq: Seq(c.seq),
                uid: c.uid,
                backend_href: if c.backend_href.is_empty() {
                    None
                } else {
                    Some(Href::new(c.backend_href).map_err(bad)?)
                },
                backend_version: (!c.backend_version.is_empty()).then_some(c.backend_version),
                content: (c.op == pb::change::Op::Upsert as i32).then_some(c.content),
                changed_at_ms: c.changed_at_ms,
                base: (!c.base_content.is_empty()).then_some(c.base_content),
            });
        }
    }
    Ok((out, head))
}

/// One attempt at a round: pull, read, plan, write, push.
///
/// A `light` attempt (a nudge: the gateway has changes) writes the gateway's changes
/// without reading the back end's first, which on a large collection is most of the
/// time a client waits for its write to arrive. That is safe because every back-end
/// write is conditional: an item changed on the back end meanwhile answers 412, and
/// the round then reads the back end and settles it by policy. The sync state is left
/// as it was, so the next full round sees every back-end change. Not light: the first
/// import and a forced resync (no saved state).
#[tracing::instrument(name = "attempt", skip_all, fields(light))]
async fn attempt(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    token: u64,
    lost: &AtomicBool,
    light: bool,
) -> Result<RoundStats, RoundError> {
    let (gateway, head) = pull_gateway(ctx, &coll.id).await?;
    let index_source = GatewayIndex {
        ctx,
        id: &coll.id,
        cache: tokio::sync::OnceCell::new(),
    };
    let light = light && !gateway.is_empty() && !coll.backend_state.is_empty();
    tracing::Span::current().record("light", light);
    let detected = if light {
        Detected {
            signals: Vec::new(),
            new_state: String::new(),
        }
    } else {
        detect(ctx, coll, &index_source).await?
    };
    let state_changed = !detected.new_state.is_empty() && detected.new_state != coll.backend_state;
    if detected.signals.is_empty() && gateway.is_empty() {
        if state_changed {
            let state = Some(detected.new_state);
            push_all(
                ctx,
                coll,
                (token, lost),
                head,
                vec![(Vec::new(), Vec::new())],
                state,
            )
            .await?;
        }
        return Ok(RoundStats::default());
    }
    let index = (&index_source).get().await?;

    let deleted = detected
        .signals
        .iter()
        .filter(|s| matches!(s, BackendSignal::Deleted(_)))
        .count();
    if let Some(reason) = Guard::default().check(index.len(), deleted) {
        warn!(collection = %coll.href, deleted, known = index.len(), "mass deletion guard tripped; pausing");
        let packet = pb::ChangePacket {
            collection_id: coll.id.clone(),
            base_seq: head,
            fencing_token: token,
            pause_reason: reason.clone(),
            ..Default::default()
        };
        send_packet(ctx, packet).await?;
        coll.paused = true;
        return Err(RoundError::Paused(reason));
    }

    let wanted = plan::fetch_list(coll.mode, &detected.signals, &gateway);
    let total = wanted.len();
    let href_str = coll.href.to_string();
    let (copies, gone) = ctx
        .backend
        .fetch(&coll.href, &wanted, &mut |done| {
            progress(ctx, &coll.id, "fetching", done, total);
            if total >= 500 {
                info!(collection = %href_str, fetched = done, total, "fetching from the back end");
            }
        })
        .await?;
    if !wanted.is_empty() {
        info!(collection = %coll.href, fetched = copies.len(), gone = gone.len(), "fetched from the back end");
    }
    let mut backend: Vec<BackendChange> = copies.into_iter().map(BackendChange::Changed).collect();
    let mut seen: HashSet<Href> = backend.iter().map(|b| b.href().clone()).collect();
    for h in gone
        .into_iter()
        .chain(detected.signals.iter().filter_map(|s| match s {
            BackendSignal::Deleted(h) => Some(h.clone()),
            BackendSignal::Changed { .. } => None,
        }))
    {
        if seen.insert(h.clone()) {
            backend.push(BackendChange::Deleted(h));
        }
    }

    let actions = plan::plan(&PlanRound {
        mode: coll.mode,
        policy: coll.policy,
        kind: ctx.backend.kind(),
        collection_href: &coll.href,
        index: &index,
        backend: &backend,
        gateway: &gateway,
    });
    // Losers are kept before anything overwrites them: a crash between a write and
    // the packet that records it must never take the losing version with it. (A write
    // that then fails, or a round that crashes, plans the same conflict again; the
    // gateway keeps one record of one losing version.)
    let budget = packet_budget(ctx.max_message);
    let losers: Vec<pb::ConflictRecord> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Keep(l) => Some(loser_pb(l)),
            _ => None,
        })
        .collect();
    let conflicts = losers.len() as u32;
    for group in chunk_losers(losers, budget) {
        send_packet(
            ctx,
            pb::ChangePacket {
                collection_id: coll.id.clone(),
                base_seq: head,
                fencing_token: token,
                conflicts: group,
                ..Default::default()
            },
        )
        .await?;
    }
    let (acks, contents, mut stats) = execute_backend(ctx, &coll.id, actions).await?;
    if lost.load(Ordering::SeqCst) {
        return Err(RoundError::LeaseLost("not renewed in time".into()));
    }
    stats.conflicts = conflicts;
    let mut packets: Vec<(Vec<pb::Change>, Vec<pb::ConflictRecord>)> = Vec::new();
    if !acks.is_empty() {
        packets.push((acks, Vec::new()));
    }
    packets.extend(
        chunk(contents, budget, ctx.max_packet_ops)
            .into_iter()
            .map(|c| (c, Vec::new())),
    );
    if packets.is_empty() {
        packets.push((Vec::new(), Vec::new()));
    }
    let new_state = (!detected.new_state.is_empty()).then(|| detected.new_state.clone());
    push_all(ctx, coll, (token, lost), head, packets, new_state).await?;
    Ok(stats)
}

/// Pushes a round's packets in order; only the last is final and carries the new
/// back-end state.
#[tracing::instrument(name = "push to gateway", skip_all, fields(packets = packets.len()))]
pub(super) async fn push_all(
    ctx: &SourceCtx,
    coll: &mut CollectionState,
    lease: (u64, &AtomicBool),
    head: u64,
    packets: Vec<(Vec<pb::Change>, Vec<pb::ConflictRecord>)>,
    new_state: Option<String>,
) -> Result<(), RoundError> {
    let (token, lost) = lease;
    let n = packets.len();
    let total: usize = packets.iter().map(|(c, _)| c.len()).sum();
    let mut pushed = 0;
    for (i, (changes, conflicts)) in packets.into_iter().enumerate() {
        if lost.load(Ordering::SeqCst) {
            return Err(RoundError::LeaseLost("not renewed in time".into()));
        }
        let is_final = i + 1 == n;
        pushed += changes.len();
        let packet = pb::ChangePacket {
            collection_id: coll.id.clone(),
            base_seq: head,
            fencing_token: token,
            changes,
            conflicts,
            backend_state: if is_final {
                new_state.clone().unwrap_or_default()
            } else {
                String::new()
            },
            pause_reason: String::new(),
            r#final: is_final,
        };
        send_packet(ctx, packet).await?;
        progress(ctx, &coll.id, "pushing", pushed, total);
        // Long pushes show their progress in the log (a mail import's batches log
        // their own).
        if n > 8 {
            info!(collection = %coll.href, pushed, "pushed to the gateway");
        }
    }
    if let Some(s) = new_state {
        coll.backend_state = s;
    }
    Ok(())
}

pub(super) async fn send_packet(
    ctx: &SourceCtx,
    packet: pb::ChangePacket,
) -> Result<(), RoundError> {
    match ctx.link.ask(Req::ChangePacket(packet)).await? {
        Ans::Verdict(v) => match v.outcome {
            Some(pb::verdict::Outcome::Accepted(_)) => Ok(()),
            Some(pb::verdict::Outcome::Rejected(r)) => {
                match pb::rejected::Reason::try_from(r.reason) {
                    Ok(pb::rejected::Reason::StaleBase) => Err(RoundError::StaleBase),
                    Ok(pb::rejected::Reason::StaleFence) => Err(RoundError::LeaseLost(r.detail)),
                    _ => Err(RoundError::Invalid(r.detail)),
                }
            }
            None => Err(LinkError::Unexpected("verdict without outcome".into()).into()),
        },
        other => Err(LinkError::Unexpected(format!("{other:?}")).into()),
    }
}

pub(super) fn change(op: pb::change::Op, item_id: &ItemId) -> pb::Change {
    pb::Change {
        op: op as i32,
        item_id: item_id.to_string(),
        ..Default::default()
    }
}

/// Reads back what this round wrote, in one fetch, so the gateway records what
/// the back end really holds. Some servers rewrite what they store (a vCard 4.0 kept
/// as 3.0) and still answer the PUT with a strong ETag: taking that ETag as the
/// version of what we wrote would leave the two sides different for good. A copy that
/// only re-serialises what we wrote (Radicale reorders and refolds every item) keeps
/// the client's bytes on the gateway and records the version read; a copy that means
/// something else, or is in another vCard version, replaces the gateway's content
/// (the acknowledgement becomes an import settling the same change).
async fn read_back(
    ctx: &SourceCtx,
    acks: &mut [pb::Change],
    written: Vec<(usize, Vec<u8>)>,
) -> Result<(), RoundError> {
    if written.is_empty() {
        return Ok(());
    }
    let hrefs: Vec<Href> = written
        .iter()
        .filter_map(|(i, _)| Href::new(acks[*i].backend_href.clone()).ok())
        .collect();
    let collection = hrefs
        .first()
        .map(|h| {
            h.as_str()
                .rsplit_once('/')
                .map_or("/", |(c, _)| c)
                .to_string()
                + "/"
        })
        .unwrap_or_default();
    let Ok(collection) = Href::new(collection) else {
        return Ok(());
    };
    let (copies, _) = ctx.backend.fetch(&collection, &hrefs, &mut |_| {}).await?;
    let by_href: std::collections::HashMap<&str, &postern_core::plan::BackendCopy> =
        copies.iter().map(|c| (c.href.as_str(), c)).collect();
    for (i, data) in written {
        let ack = &mut acks[i];
        let Some(copy) = by_href.get(ack.backend_href.as_str()) else {
            continue;
        };
        if !copy.version.is_empty() {
            ack.backend_version = copy.version.clone();
        }
        // Re-serialised (reordered, refolded) is kept as the client wrote it; another
        // meaning, or a vCard stored in another version, is the back end's copy.
        let rewritten = !content::same_content(&data, &copy.content)
            || content::property(&data, "VERSION") != content::property(&copy.content, "VERSION");
        if rewritten {
            info!(href = %copy.href, "the back end stored something else than we wrote; taking its copy");
            ack.uid = content::uid(&copy.content).unwrap_or_default();
            ack.content_type = ctx.backend.kind().content_type().to_string();
            ack.content = copy.content.clone();
        }
    }
    Ok(())
}

/// Tells the gateway to set aside the change `settles` of an item the back end refused.
fn set_aside(item_id: &ItemId, settles: Seq, status: u16, answer: String) -> pb::Change {
    pb::Change {
        seq: settles.0,
        backend_status: u32::from(status),
        backend_answer: answer,
        ..change(pb::change::Op::Refused, item_id)
    }
}

fn loser_pb(l: &Loser) -> pb::ConflictRecord {
    pb::ConflictRecord {
        item_id: l
            .item_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        uid: l.uid.clone(),
        loser_side: pb::Side::from(l.side) as i32,
        loser_content: l.content.clone().unwrap_or_default(),
        policy: pb::ConflictPolicy::from(l.policy) as i32,
        backend_href: l.href.as_ref().map(ToString::to_string).unwrap_or_default(),
    }
}

type Executed = (Vec<pb::Change>, Vec<pb::Change>, RoundStats);

/// Performs the back-end writes of a plan and turns every action into the packet
/// changes that record it: acknowledgements (facts about the back end) and content
/// changes for the gateway.
#[tracing::instrument(name = "write back end", skip_all, fields(actions = actions.len()))]
async fn execute_backend(
    ctx: &SourceCtx,
    id: &str,
    actions: Vec<Action>,
) -> Result<Executed, RoundError> {
    let writes_backend =
        |a: &Action| matches!(a, Action::Put { .. } | Action::DeleteOnBackend { .. });
    let writes = actions.iter().filter(|a| writes_backend(a)).count();
    let mut written = 0;
    let mut stats = RoundStats::default();
    let mut acks: Vec<pb::Change> = Vec::new();
    let mut contents: BTreeMap<usize, pb::Change> = BTreeMap::new();
    let mut by_item: BTreeMap<ItemId, usize> = BTreeMap::new();
    let content_type = ctx.backend.kind().content_type();
    let ctype: &'static str = content_type;
    // What each successful PUT wrote: (its acknowledgement in `acks`, the bytes).
    let mut written_back: Vec<(usize, Vec<u8>)> = Vec::new();

    for (i, action) in actions.into_iter().enumerate() {
        if writes_backend(&action) {
            if written % 50 == 0 {
                progress(ctx, id, "writing", written, writes);
            }
            written += 1;
        }
        match action {
            Action::Put {
                item_id,
                settles,
                href,
                precondition,
                content: data,
                merged,
            } => match ctx.backend.put(&href, &precondition, &data).await? {
                WriteOutcome::Done {
                    version,
                    href: assigned,
                } => {
                    // Where the back end put it, when it chose (IMAP's APPENDUID).
                    let href = assigned.unwrap_or(href);
                    stats.to_backend += 1;
                    // A merge of both sides goes to the gateway too (an import that
                    // settles the change); otherwise the gateway has these bytes.
                    let (uid, content_type, content) = if merged {
                        stats.merged += 1;
                        let uid = content::uid(&data).unwrap_or_default();
                        (uid, ctype.to_string(), data.clone())
                    } else {
                        Default::default()
                    };
                    written_back.push((acks.len(), data));
                    acks.push(pb::Change {
                        backend_href: href.to_string(),
                        backend_version: version.unwrap_or_default(),
                        seq: settles.0,
                        uid,
                        content_type,
                        content,
                        ..change(pb::change::Op::Upsert, &item_id)
                    });
                }
                WriteOutcome::Conflict => {
                    info!(href = %href, "back end changed since we planned; will re-plan");
                    stats.deferred += 1;
                }
                WriteOutcome::Refused { status, answer } => {
                    warn!(href = %href, status, answer = %answer, "the back end refused this item; setting it aside");
                    stats.refused += 1;
                    acks.push(set_aside(&item_id, settles, status, answer));
                }
            },
            Action::DeleteOnBackend {
                item_id,
                settles,
                href,
                if_match,
            } => match ctx.backend.delete(&href, &if_match).await? {
                WriteOutcome::Done { .. } => {
                    stats.to_backend += 1;
                    acks.push(pb::Change {
                        seq: settles.0,
                        ..change(pb::change::Op::Delete, &item_id)
                    });
                }
                WriteOutcome::Conflict => {
                    stats.deferred += 1;
                }
                WriteOutcome::Refused { status, answer } => {
                    warn!(href = %href, status, answer = %answer, "the back end refused this deletion; setting it aside");
                    stats.refused += 1;
                    acks.push(set_aside(&item_id, settles, status, answer));
                }
            },
            Action::RecordVersion {
                item_id,
                href,
                version,
                settles,
            } => acks.push(pb::Change {
                backend_href: href.to_string(),
                backend_version: version,
                seq: settles.map_or(0, |s| s.0),
                ..change(pb::change::Op::Upsert, &item_id)
            }),
            Action::Acknowledge { item_id, settles } => match by_item.get(&item_id) {
                Some(at) => {
                    if let Some(c) = contents.get_mut(at) {
                        c.seq = settles.0;
                    }
                }
                None => acks.push(pb::Change {
                    seq: settles.0,
                    ..change(pb::change::Op::Ack, &item_id)
                }),
            },
            Action::Import {
                item_id,
                copy,
                settles,
                merged,
            } => {
                let size = copy.content.len() + merged.as_ref().map_or(0, Vec::len);
                if size + ENVELOPE > ctx.max_message {
                    // Alone it would exceed the gateway's largest message: it stays
                    // on the back end only, and the operator is told.
                    warn!(href = %copy.href, bytes = copy.content.len(), limit = ctx.max_message,
                          "item too large for the gateway; left on the back end");
                    stats.too_large += 1;
                    continue;
                }
                stats.to_gateway += 1;
                let c = pb::Change {
                    op: pb::change::Op::Upsert as i32,
                    item_id: item_id
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    backend_href: copy.href.to_string(),
                    backend_version: copy.version,
                    uid: content::uid(&copy.content).unwrap_or_default(),
                    content_type: content_type.to_string(),
                    seq: settles.map_or(0, |s| s.0),
                    ..Default::default()
                };
                // Merge mode: the gateway keeps the merge, the back end its copy.
                let c = match merged {
                    Some(m) => {
                        stats.merged += 1;
                        pb::Change {
                            content: m,
                            base_content: copy.content,
                            ..c
                        }
                    }
                    None => pb::Change {
                        content: copy.content,
                        ..c
                    },
                };
                if let Some(id) = item_id {
                    by_item.insert(id, i);
                }
                contents.insert(i, c);
            }
            Action::DeleteOnGateway { item_id, settles } => {
                stats.to_gateway += 1;
                by_item.insert(item_id.clone(), i);
                contents.insert(
                    i,
                    pb::Change {
                        seq: settles.map_or(0, |s| s.0),
                        ..change(pb::change::Op::Delete, &item_id)
                    },
                );
            }
            Action::Detach { item_id } => {
                by_item.insert(item_id.clone(), i);
                contents.insert(i, change(pb::change::Op::Upsert, &item_id));
            }
            // Kept before the writes (see `attempt`).
            Action::Keep(_) => {}
        }
    }
    read_back(ctx, &mut acks, written_back).await?;
    Ok((acks, contents.into_values().collect(), stats))
}
