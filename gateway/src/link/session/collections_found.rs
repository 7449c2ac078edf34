//! What a connector's discovery found: the gateway records the collections, binds
//! those the connector made, renamed or deleted for clients, lets mailboxes the back
//! end no longer lists go (or pause), and answers with the assignment.

use postern_proto as pb;
use tracing::{debug, info};
use uuid::Uuid;

use super::{Out, Session, assigned, failure, msg};
use crate::store::StoreError;
use crate::store::collections::FoundCollection;

impl Session {
    pub(super) async fn collections_found(
        &self,
        rid: u64,
        f: pb::CollectionsFound,
    ) -> Result<Vec<pb::GatewayMessage>, StoreError> {
        let Some(source) = self.sources.read().await.get(&f.source).cloned() else {
            return Ok(vec![failure(
                rid,
                format!("unknown source {:?} (not in hello, or refused)", f.source),
            )]);
        };
        let mut found = Vec::new();
        for c in &f.collections {
            // The connector made or deleted a collection a client asked for.
            if !c.collection_id.is_empty() {
                let Ok(id) = Uuid::parse_str(&c.collection_id) else {
                    return Ok(vec![failure(
                        rid,
                        format!("bad collection id {:?}", c.collection_id),
                    )]);
                };
                if c.deleted {
                    self.store
                        .remove_deleted(self.tenant(), source.id, id)
                        .await?;
                } else if c.backend_href.starts_with('/') {
                    self.store
                        .bind_created(self.tenant(), source.id, id, &c.backend_href)
                        .await?;
                }
                if c.props_applied > 0 {
                    self.store
                        .props_applied(
                            self.tenant(),
                            source.id,
                            id,
                            i64::try_from(c.props_applied).unwrap_or(i64::MAX),
                        )
                        .await?;
                }
                continue;
            }
            let Some(kind) = pb::enums::kind(c.kind) else {
                return Ok(vec![failure(
                    rid,
                    format!("unknown collection kind {}", c.kind),
                )]);
            };
            if !c.backend_href.starts_with('/') {
                return Ok(vec![failure(
                    rid,
                    format!("backend href {:?} must be absolute", c.backend_href),
                )]);
            }
            found.push(FoundCollection {
                backend_href: c.backend_href.clone(),
                kind,
                display_name: c.display_name.clone(),
                color: c.color.clone(),
                // A role this gateway does not know is left out, not refused.
                role: pb::enums::role(c.role),
                delimiter: (!c.delimiter.is_empty()).then(|| c.delimiter.chars().take(1).collect()),
            });
        }
        if f.complete {
            let listed: Vec<String> = found.iter().map(|c| c.backend_href.clone()).collect();
            let (removed, paused) = self
                .store
                .remove_vanished_mailboxes(self.tenant(), source.id, &listed)
                .await?;
            if removed + paused > 0 {
                info!(connector = %self.claims.name, source = %f.source, removed, paused,
                      "mailboxes the back end no longer lists");
            }
        }
        let collections = self
            .store
            .upsert_collections(self.tenant(), source.id, &found)
            .await?;
        self.collections
            .write()
            .await
            .extend(collections.iter().map(|c| c.id));
        debug!(connector = %self.claims.name, source = %f.source, collections = collections.len(), "assigned");
        Ok(vec![msg(
            rid,
            Out::Assignment(pb::Assignment {
                source: f.source,
                collections: collections.iter().map(assigned).collect(),
            }),
        )])
    }
}
