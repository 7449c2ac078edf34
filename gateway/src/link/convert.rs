//! The one place where loose protobuf messages from a connector become validated
//! domain values (and back). Anything malformed is refused here as `Invalid`.

use postern_proto as pb;
use uuid::Uuid;

use crate::store::items::{IndexEntry, PendingChange};
use crate::store::packet::{BodyRef, LoserIn, Packet, PacketChange};

/// A field that does not hold what it must.
#[derive(Debug, thiserror::Error)]
#[error("invalid {field}: {why}")]
pub struct Invalid {
    /// Which field.
    pub field: &'static str,
    /// What is wrong.
    pub why: String,
}

fn uuid(field: &'static str, s: &str) -> Result<Uuid, Invalid> {
    Uuid::parse_str(s).map_err(|_| Invalid {
        field,
        why: format!("{s:?} is not an id"),
    })
}

fn opt_uuid(field: &'static str, s: &str) -> Result<Option<Uuid>, Invalid> {
    if s.is_empty() {
        Ok(None)
    } else {
        uuid(field, s).map(Some)
    }
}

fn settles(seq: u64) -> Option<i64> {
    (seq != 0).then_some(seq as i64)
}

impl TryFrom<&pb::Change> for PacketChange {
    type Error = Invalid;

    fn try_from(c: &pb::Change) -> Result<Self, Invalid> {
        let item_id = opt_uuid("item_id", &c.item_id)?;
        let need_id = || {
            item_id.ok_or(Invalid {
                field: "item_id",
                why: "required for this change".into(),
            })
        };
        match pb::change::Op::try_from(c.op) {
            // An import: the bytes inline, in parts (an upload), or held already.
            Ok(pb::change::Op::Upsert)
                if !c.upload_id.is_empty()
                    || !c.body_sha256.is_empty()
                    || !c.content.is_empty() =>
            {
                if !c.backend_href.starts_with('/') {
                    return Err(Invalid {
                        field: "backend_href",
                        why: "must be an absolute path".into(),
                    });
                }
                let message_id = (!c.uid.is_empty()).then(|| c.uid.clone());
                let upload = if !c.upload_id.is_empty() {
                    let id = Uuid::parse_str(&c.upload_id).map_err(|e| Invalid {
                        field: "upload_id",
                        why: e.to_string(),
                    })?;
                    Some((BodyRef::Upload(id), message_id))
                } else if !c.body_sha256.is_empty() {
                    if c.body_sha256.len() != 32 {
                        return Err(Invalid {
                            field: "body_sha256",
                            why: "a 32-byte hash".into(),
                        });
                    }
                    Some((BodyRef::Known(c.body_sha256.clone()), message_id))
                } else {
                    None
                };
                let inline = upload.is_none();
                Ok(PacketChange::Import {
                    item_id,
                    backend_href: c.backend_href.clone(),
                    backend_version: c.backend_version.clone(),
                    content: if inline {
                        c.content.clone()
                    } else {
                        Vec::new()
                    },
                    content_type: c.content_type.clone(),
                    settles: settles(c.seq),
                    flags: c.flags.clone(),
                    base: (inline && !c.base_content.is_empty()).then(|| c.base_content.clone()),
                    internal_date_ms: (c.internal_date_ms != 0).then_some(c.internal_date_ms),
                    upload,
                })
            }
            Ok(pb::change::Op::Flags) => Ok(PacketChange::Flags {
                item_id: need_id()?,
                base_flags: c.base_flags.as_ref().map(|b| b.flags.clone()),
                backend_href: match c.backend_href.as_str() {
                    "" => None,
                    h if h.starts_with('/') => Some(h.to_string()),
                    _ => {
                        return Err(Invalid {
                            field: "backend_href",
                            why: "must be an absolute path".into(),
                        });
                    }
                },
                flags: c.flags.clone(),
                backend_version: c.backend_version.clone(),
                settles: settles(c.seq),
            }),
            Ok(pb::change::Op::Upsert) => Ok(PacketChange::Record {
                item_id: need_id()?,
                backend: (!c.backend_href.is_empty())
                    .then(|| (c.backend_href.clone(), c.backend_version.clone())),
                settles: settles(c.seq),
            }),
            Ok(pb::change::Op::Delete) => Ok(PacketChange::Delete {
                item_id: need_id()?,
                settles: settles(c.seq),
                keep_as_loser: c.keep_as_loser,
            }),
            Ok(pb::change::Op::Ack) => Ok(PacketChange::Ack {
                item_id: need_id()?,
                settles: settles(c.seq).ok_or(Invalid {
                    field: "seq",
                    why: "ACK needs the change it settles".into(),
                })?,
            }),
            Ok(pb::change::Op::Refused) => Ok(PacketChange::Refused {
                item_id: need_id()?,
                settles: settles(c.seq).ok_or(Invalid {
                    field: "seq",
                    why: "REFUSED needs the change it sets aside".into(),
                })?,
                status: u16::try_from(c.backend_status).unwrap_or(0),
                answer: c.backend_answer.chars().take(1024).collect(),
            }),
            Ok(pb::change::Op::Unspecified) | Err(_) => Err(Invalid {
                field: "op",
                why: format!("unknown op {}", c.op),
            }),
        }
    }
}

impl TryFrom<&pb::ChangePacket> for Packet {
    type Error = Invalid;

    fn try_from(p: &pb::ChangePacket) -> Result<Self, Invalid> {
        let changes = p
            .changes
            .iter()
            .map(PacketChange::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let conflicts = p
            .conflicts
            .iter()
            .map(|c| {
                let side = pb::enums::side(c.loser_side).ok_or_else(|| Invalid {
                    field: "loser_side",
                    why: format!("unknown side {}", c.loser_side),
                })?;
                let policy = pb::enums::policy(c.policy).ok_or_else(|| Invalid {
                    field: "policy",
                    why: format!("unknown conflict policy {}", c.policy),
                })?;
                Ok(LoserIn {
                    item_id: opt_uuid("conflict item_id", &c.item_id)?,
                    uid: c.uid.clone(),
                    side: side.as_str().to_string(),
                    content: (!c.loser_content.is_empty()).then(|| c.loser_content.clone()),
                    policy: policy.as_str().to_string(),
                    backend_href: c.backend_href.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Packet {
            collection: uuid("collection_id", &p.collection_id)?,
            base_seq: i64::try_from(p.base_seq).map_err(|_| Invalid {
                field: "base_seq",
                why: "too large".into(),
            })?,
            fencing_token: p.fencing_token,
            changes,
            conflicts,
            backend_state: (!p.backend_state.is_empty()).then(|| p.backend_state.clone()),
            pause_reason: (!p.pause_reason.is_empty()).then(|| p.pause_reason.clone()),
            is_final: p.r#final,
        })
    }
}

/// A pending gateway change as sent to the connector.
pub fn pending_to_pb(p: &PendingChange) -> pb::Change {
    pb::Change {
        op: if p.content.is_some() {
            pb::change::Op::Upsert
        } else {
            pb::change::Op::Delete
        } as i32,
        item_id: p.item_id.to_string(),
        backend_href: p.backend_href.clone().unwrap_or_default(),
        backend_version: p.backend_version.clone().unwrap_or_default(),
        uid: p.uid.clone(),
        content: p.content.clone().unwrap_or_default(),
        content_type: p.content_type.clone(),
        changed_at_ms: p.changed_at_ms,
        seq: p.seq as u64,
        flags: p.flags.clone(),
        base_content: p
            .base
            .clone()
            .filter(|_| p.content.is_some())
            .unwrap_or_default(),
        moved_from_collection: p
            .moved_from
            .as_ref()
            .map(|m| m.0.clone())
            .unwrap_or_default(),
        moved_from_href: p
            .moved_from
            .as_ref()
            .map(|m| m.1.clone())
            .unwrap_or_default(),
        moved_away: p.moved_away && p.content.is_none(),
        body_sha256: p.body.as_ref().map(|b| b.0.clone()).unwrap_or_default(),
        body_size: p.body.as_ref().map_or(0, |b| b.1.max(0) as u64),
        ..Default::default()
    }
}

/// An index entry as sent to the connector.
pub fn index_to_pb(e: &IndexEntry) -> pb::IndexEntry {
    pb::IndexEntry {
        item_id: e.item_id.to_string(),
        backend_href: e.backend_href.clone(),
        backend_version: e.backend_version.clone(),
        flags: e.flags.clone(),
        current_flags: e
            .current_flags
            .as_ref()
            .map(|f| pb::FlagSet { flags: f.clone() }),
        sha256: e.key.as_ref().map(|k| k.0.clone()).unwrap_or_default(),
        size: e.key.as_ref().map_or(0, |k| k.1.max(0) as u64),
        message_id: e.key.as_ref().and_then(|k| k.2.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_without_content_is_a_record_and_needs_an_item() {
        let c = pb::Change {
            op: pb::change::Op::Upsert as i32,
            ..Default::default()
        };
        assert!(PacketChange::try_from(&c).is_err());
        let id = Uuid::new_v4();
        let c = pb::Change {
            op: pb::change::Op::Upsert as i32,
            item_id: id.to_string(),
            backend_href: "/a/b.ics".into(),
            backend_version: "\"1\"".into(),
            seq: 4,
            ..Default::default()
        };
        assert!(matches!(
            PacketChange::try_from(&c).unwrap(),
            PacketChange::Record { item_id, backend: Some(_), settles: Some(4) } if item_id == id
        ));
    }

    #[test]
    fn malformed_changes_are_refused() {
        let c = pb::Change {
            op: 0,
            ..Default::default()
        };
        assert!(PacketChange::try_from(&c).is_err());
        let c = pb::Change {
            op: pb::change::Op::Upsert as i32,
            content: b"x".to_vec(),
            backend_href: "rel".into(),
            ..Default::default()
        };
        assert!(PacketChange::try_from(&c).is_err());
        let c = pb::Change {
            op: pb::change::Op::Ack as i32,
            item_id: Uuid::new_v4().to_string(),
            ..Default::default()
        };
        assert!(PacketChange::try_from(&c).is_err(), "ACK without seq");
    }
}
