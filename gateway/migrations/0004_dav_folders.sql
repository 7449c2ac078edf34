-- Plain WebDAV resources inside calendar and address-book collections (RFC 4791 §4.2
-- allows non-calendar collections there): folders and arbitrary files with their dead
-- properties. They live on the gateway only; they are not calendar data and are not
-- synced to the back end.
CREATE TABLE dav_files (
    tenant_id      uuid NOT NULL,
    collection_id  uuid NOT NULL,
    path           text NOT NULL,          -- relative to the collection; folders end in '/'
    is_dir         boolean NOT NULL,
    content        bytea,
    content_type   text NOT NULL DEFAULT 'application/octet-stream',
    etag           text NOT NULL DEFAULT '',
    props          jsonb NOT NULL DEFAULT '{}',
    modified_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, collection_id, path),
    FOREIGN KEY (tenant_id, collection_id) REFERENCES collections(tenant_id, id) ON DELETE CASCADE
);
