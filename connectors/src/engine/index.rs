//! What the gateway knows of a collection's items on the back end (its index), as
//! the rounds pull it: whole, or only the items a round names, in batches of bounded
//! size either way.

use pb::connector_message::Body as Req;
use pb::gateway_message::Body as Ans;
use postern_proto as pb;

use super::SourceCtx;
use super::round::RoundError;
use crate::link::LinkError;

/// Which entries of the index a round asks for.
pub(super) enum Wanted {
    /// Every item the back end has.
    All,
    /// Every item, by its back-end href alone.
    Hrefs,
    /// Only these: by back-end href, and by item id.
    Only {
        hrefs: Vec<String>,
        items: Vec<String>,
    },
}

/// An index as pulled.
pub(super) struct Pulled {
    /// The entries asked for.
    pub entries: Vec<pb::IndexEntry>,
    /// How many entries the whole index holds.
    pub total: usize,
}

/// Pulls the index of collection `id`: the entries asked for, from every batch of
/// the answer.
pub(super) async fn pull(ctx: &SourceCtx, id: &str, wanted: Wanted) -> Result<Pulled, RoundError> {
    let req = match wanted {
        Wanted::All => pb::IndexPull {
            collection_id: id.to_string(),
            ..Default::default()
        },
        Wanted::Hrefs => pb::IndexPull {
            collection_id: id.to_string(),
            hrefs_only: true,
            ..Default::default()
        },
        Wanted::Only { hrefs, items } => pb::IndexPull {
            collection_id: id.to_string(),
            selected: true,
            backend_hrefs: hrefs,
            item_ids: items,
            hrefs_only: false,
        },
    };
    let mut out = Pulled {
        entries: Vec::new(),
        total: 0,
    };
    for a in ctx.link.request(Req::IndexPull(req)).await? {
        match a.body {
            Some(Ans::IndexBatch(b)) => {
                out.total = usize::try_from(b.total).unwrap_or(usize::MAX);
                out.entries.extend(b.entries);
            }
            other => return Err(LinkError::Unexpected(format!("{other:?}")).into()),
        }
    }
    // A gateway that does not count says nothing: what came is all it said.
    out.total = out.total.max(out.entries.len());
    Ok(out)
}
