-- The `merge` conflict policy merges three ways against the version of an item both
-- sides last agreed on. The gateway keeps it per item, for collections whose policy
-- is `merge` only (NULL otherwise, and until both sides first agree): set when the
-- back end's content is imported, when a gateway change is written to the back end,
-- and cleared when the item is deleted.
ALTER TABLE items ADD COLUMN base_content bytea;

-- Conflict losers are kept before the write that beats them (so a crash cannot lose
-- them) and a re-planned round sends the same one again; the gateway keeps one
-- record per unresolved losing version, found through this index.
CREATE INDEX conflicts_open_by_item ON conflicts (tenant_id, collection_id, item_id)
    WHERE resolved_at IS NULL;
