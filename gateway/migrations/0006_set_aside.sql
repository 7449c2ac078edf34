-- Items a back end refused. The gateway change at `refused_seq` is set aside: not
-- handed to the connector again while it is the item's pending change, so one item
-- the back end will not take never stops the rest of its collection. A newer change
-- of the item (a client's edit), or `admin conflicts retry`, makes it go out again.
-- `refused_status` and `refused_answer` are what the back end said, for the operator.
ALTER TABLE items
    ADD COLUMN refused_seq    bigint,
    ADD COLUMN refused_status integer,
    ADD COLUMN refused_answer text,
    ADD COLUMN refused_at     timestamptz;
CREATE INDEX items_refused ON items (tenant_id, collection_id) WHERE refused_seq IS NOT NULL;
