//! Following a long operation from the CLI: `admin collection resync --wait`.
//!
//! The work itself happens in a connector's round, possibly behind another gateway
//! replica, so the CLI follows what every replica writes to the database: the progress
//! the round reports (`RoundProgress`: a phase and a count), then its end (`RoundReport`
//! with the fencing token of its lease). A round is the resync round when its token is
//! newer than the one the resync request fenced off; rounds already running when the
//! request was made hold an older one and are ignored.

use std::time::Duration;

use uuid::Uuid;

use crate::store::Store;
use crate::store::collections::{Collection, Progress};

/// How often the database is read while waiting.
const POLL: Duration = Duration::from_millis(250);

/// Waits until a round holding a fencing token newer than `fence` ends well, printing
/// its progress on stderr. Fails when the collection is paused, or after `timeout`.
pub async fn resync(
    store: &Store,
    tenant: Uuid,
    id: Uuid,
    fence: i64,
    timeout: Duration,
) -> anyhow::Result<Collection> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut shown: Option<Progress> = None;
    let mut failures_shown = None;
    loop {
        let c = store.collection(tenant, id).await?;
        let ours = c.last_round_token > fence;
        if let Some(p) = &c.progress
            && (p.running || ours)
            && shown
                .as_ref()
                .is_none_or(|s| s.phase != p.phase || s.done != p.done)
        {
            eprintln!("  {}", describe(p));
            shown = Some(p.clone());
        }
        if ours && matches!(c.last_outcome.as_str(), "ok" | "conflict") {
            return Ok(c);
        }
        if ours && failures_shown != c.last_round_at {
            eprintln!(
                "  round ended: {}: {} (the connector tries again)",
                c.last_outcome, c.last_detail
            );
            failures_shown = c.last_round_at;
        }
        if let Some(reason) = &c.paused_reason {
            anyhow::bail!(
                "collection {id} is paused ({reason}): resume it (`admin collection resume`) and the resync runs"
            );
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "no resync round finished within {}: is a connector running for this collection? (`admin connector list`, `admin status`)",
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// "fetching 1200/5000 (24%)".
pub fn describe(p: &Progress) -> String {
    if p.total > 0 {
        format!(
            "{} {}/{} ({}%)",
            p.phase,
            p.done,
            p.total,
            p.done.saturating_mul(100) / p.total
        )
    } else {
        format!("{} {}", p.phase, p.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(phase: &str, done: i64, total: i64) -> Progress {
        Progress {
            phase: phase.into(),
            done,
            total,
            at: chrono::Utc::now(),
            running: true,
        }
    }

    #[test]
    fn progress_reads_as_a_count_and_a_share() {
        assert_eq!(
            describe(&at("fetching", 1200, 5000)),
            "fetching 1200/5000 (24%)"
        );
        assert_eq!(describe(&at("pushing", 7, 7)), "pushing 7/7 (100%)");
        assert_eq!(describe(&at("writing", 0, 0)), "writing 0");
    }
}
