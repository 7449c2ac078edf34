-- Message bodies no message refers to are removed (issue 11): the gateway's
-- housekeeping finds them through this index, which also serves the foreign key
-- check when a body is deleted.
CREATE INDEX items_body_ref ON items (tenant_id, body_sha256) WHERE body_sha256 IS NOT NULL;
