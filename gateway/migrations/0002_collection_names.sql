-- Collections get a URL segment for the DAV endpoint (/dav/calendars/alice@acme/<name>/),
-- unique per user and kind: the last segment of the back-end href, made unique.
ALTER TABLE collections ADD COLUMN name text;
UPDATE collections SET name = COALESCE(NULLIF(regexp_replace(rtrim(backend_href, '/'), '^.*/', ''), ''), id::text);
UPDATE collections c SET name = c.name || '-' || left(c.id::text, 8)
  WHERE EXISTS (SELECT 1 FROM collections d WHERE d.tenant_id = c.tenant_id AND d.user_id = c.user_id
                AND d.kind = c.kind AND d.name = c.name AND d.id < c.id);
ALTER TABLE collections ALTER COLUMN name SET NOT NULL;
CREATE UNIQUE INDEX collections_user_name ON collections (tenant_id, user_id, kind, name);
-- Collection properties a client may set (PROPPATCH): display name and colour are
-- columns already; the Apple calendar order joins them.
ALTER TABLE collections ADD COLUMN sort_order integer;
