//! Prometheus metrics, served at `/metrics`: what an operator needs to answer "is it
//! syncing, and if not, why?". Counters move as things happen; the per-collection
//! backlog is read from the database at scrape time.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::Store;

/// `outcome` of a round or a packet.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// ok | conflict | paused | error; accepted | stale_base | stale_fence | invalid;
    /// for the outbox: sent | temporary | permanent.
    pub outcome: String,
}

/// `direction` items moved in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Direction {
    /// to_gateway | to_backend.
    pub direction: String,
}

/// `reason` a lease was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// held | paused | revoked | changed | unknown-collection.
    pub reason: String,
}

/// A DAV request's method and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// HTTP status code.
    pub status: String,
}

/// A collection, for the backlog gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CollectionLabel {
    /// Gateway id of the collection.
    pub collection: String,
}

/// Why a connection or stream was turned away.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refusal {
    /// http | grpc.
    pub port: String,
    /// total | per_address | tls_handshake | tls_timeout | streams_per_connector.
    pub reason: String,
}

/// Every metric of a gateway process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Connector streams open on this replica.
    pub connectors: Gauge,
    /// Rounds reported by connectors, by outcome.
    pub rounds: Family<Outcome, Counter>,
    /// Round durations reported by connectors.
    pub round_seconds: Histogram,
    /// Items applied, by direction.
    pub items: Family<Direction, Counter>,
    /// Conflicts settled (losers kept).
    pub conflicts: Counter,
    /// Change packets, by outcome.
    pub packets: Family<Outcome, Counter>,
    /// Lease requests refused, by reason (`held` = waits).
    pub lease_denials: Family<Reason, Counter>,
    /// Writes refused because their lease had expired and moved on (stale fence).
    pub lease_expiries: Counter,
    /// DAV requests by method and status.
    pub dav_requests: Family<Request, Counter>,
    /// Failed logins that were slowed down (repeated failures per user or address).
    pub auth_throttled: Counter,
    /// Gateway-side changes waiting for the back end, per collection (set at scrape).
    pub pending: Family<CollectionLabel, Gauge>,
    /// Connections and streams turned away by a limit, by port and reason.
    pub refused: Family<Refusal, Counter>,
    /// Logins answered 503 because every password-verification slot stayed busy.
    pub auth_busy: Counter,
    /// Password verifications run (argon2id), for known and unknown logins alike.
    pub password_verifications: Counter,
    /// Items a back end refused, set aside by their connector (counted as reported).
    pub items_refused: Counter,
    /// Items set aside right now, per collection (set at scrape).
    pub refused_now: Family<CollectionLabel, Gauge>,
    /// Sources that do not sync (a kind their connector cannot sync), set at scrape.
    pub sources_unsynced: Family<SourceLabel, Gauge>,
    /// Message body bytes moved over the link, by direction: a flag change adds none.
    pub mail_body_bytes: Family<Direction, Counter>,
    /// Messages waiting in the outbox (set at scrape).
    pub outbox_queued: Gauge,
    /// Seconds the oldest of them has waited (set at scrape).
    pub outbox_oldest_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Outbox messages a connector reported, by outcome (sent, temporary, permanent).
    pub outbox_relayed: Family<Outcome, Counter>,
}

/// A source, for the unsynced-sources gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// Gateway id of the source.
    pub source: String,
    /// Its kind.
    pub kind: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("postern");
        let m = Metrics {
            connectors: Gauge::default(),
            rounds: Family::default(),
            round_seconds: Histogram::new([
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
            items: Family::default(),
            conflicts: Counter::default(),
            packets: Family::default(),
            lease_denials: Family::default(),
            lease_expiries: Counter::default(),
            dav_requests: Family::default(),
            auth_throttled: Counter::default(),
            pending: Family::default(),
            refused: Family::default(),
            auth_busy: Counter::default(),
            password_verifications: Counter::default(),
            items_refused: Counter::default(),
            refused_now: Family::default(),
            sources_unsynced: Family::default(),
            mail_body_bytes: Family::default(),
            outbox_queued: Gauge::default(),
            outbox_oldest_seconds: Gauge::default(),
            outbox_relayed: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connectors_connected",
            "Connector streams open on this replica",
            m.connectors.clone(),
        );
        registry.register(
            "sync_rounds",
            "Sync rounds reported by connectors",
            m.rounds.clone(),
        );
        registry.register(
            "sync_round_duration_seconds",
            "Duration of sync rounds",
            m.round_seconds.clone(),
        );
        registry.register(
            "items_applied",
            "Items applied, by direction",
            m.items.clone(),
        );
        registry.register(
            "conflicts",
            "Conflicts settled, loser kept",
            m.conflicts.clone(),
        );
        registry.register(
            "change_packets",
            "Change packets by outcome",
            m.packets.clone(),
        );
        registry.register(
            "lease_denials",
            "Lease requests refused, by reason",
            m.lease_denials.clone(),
        );
        registry.register(
            "lease_expiries",
            "Writes refused because their lease had expired",
            m.lease_expiries.clone(),
        );
        registry.register(
            "dav_requests",
            "CalDAV/CardDAV requests by method and status",
            m.dav_requests.clone(),
        );
        registry.register(
            "auth_throttled",
            "Failed logins slowed down",
            m.auth_throttled.clone(),
        );
        registry.register(
            "journal_pending",
            "Gateway changes waiting for the back end",
            m.pending.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections and streams turned away by a limit",
            m.refused.clone(),
        );
        registry.register(
            "auth_busy",
            "Logins answered 503: every password-verification slot stayed busy",
            m.auth_busy.clone(),
        );
        registry.register(
            "password_verifications",
            "Password verifications run, for known and unknown logins alike",
            m.password_verifications.clone(),
        );
        registry.register(
            "items_refused",
            "Items a back end refused, set aside (reported)",
            m.items_refused.clone(),
        );
        registry.register(
            "items_set_aside",
            "Items set aside after a back-end refusal, per collection",
            m.refused_now.clone(),
        );
        registry.register(
            "sources_unsynced",
            "Sources that do not sync (a kind their connector cannot sync): 1 each",
            m.sources_unsynced.clone(),
        );
        registry.register(
            "mail_body_bytes",
            "Message body bytes moved over the link, by direction (to_gateway, to_backend); flag changes move none",
            m.mail_body_bytes.clone(),
        );
        registry.register(
            "outbox_queued",
            "Messages users sent that wait in the outbox for a connector to relay them",
            m.outbox_queued.clone(),
        );
        registry.register(
            "outbox_oldest_seconds",
            "Seconds the oldest message in the outbox has waited",
            m.outbox_oldest_seconds.clone(),
        );
        registry.register(
            "outbox_relayed",
            "Outbox messages connectors reported, by outcome (sent, temporary, permanent)",
            m.outbox_relayed.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// A shared handle.
    pub fn shared() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counts a DAV request.
    pub fn dav(&self, method: &str, status: u16) {
        self.dav_requests
            .get_or_create(&Request {
                method: method.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Counts a connection or stream turned away.
    pub fn connection_refused(&self, port: &str, reason: &str) {
        self.refused
            .get_or_create(&Refusal {
                port: port.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The text exposition, after refreshing the backlog from the database.
    pub async fn render(&self, store: &Store) -> String {
        if let Ok(backlog) = store.pending_by_collection().await {
            self.pending.clear();
            for (id, n) in backlog {
                self.pending
                    .get_or_create(&CollectionLabel {
                        collection: id.to_string(),
                    })
                    .set(n);
            }
        }
        if let Ok(aside) = store.set_aside_by_collection().await {
            self.refused_now.clear();
            for (id, n) in aside {
                self.refused_now
                    .get_or_create(&CollectionLabel {
                        collection: id.to_string(),
                    })
                    .set(n);
            }
        }
        if let Ok(sources) = store.list_sources(None).await {
            self.sources_unsynced.clear();
            for s in sources.iter().filter(|s| !s.problem.is_empty()) {
                self.sources_unsynced
                    .get_or_create(&SourceLabel {
                        source: s.id.to_string(),
                        kind: s.kind.clone(),
                    })
                    .set(1);
            }
        }
        if let Ok(outbox) = store.outbox_summary(None).await {
            self.outbox_queued
                .set(outbox.iter().map(|o| o.queued).sum());
            self.outbox_oldest_seconds.set(
                outbox
                    .iter()
                    .filter(|o| o.queued > 0)
                    .map(|o| o.oldest_seconds)
                    .fold(0.0, f64::max),
            );
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
