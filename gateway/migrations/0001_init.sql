-- Postern schema, version 1.
-- Every table is keyed by tenant first, so every query is tenant-scoped and the schema
-- can later be distributed by tenant (Citus, YugabyteDB, CockroachDB).

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- App passwords: argon2id PHC strings, never the password itself.
CREATE TABLE app_passwords (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    user_id     uuid NOT NULL,
    label       text NOT NULL DEFAULT '',
    hash        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
);

-- Connectors: one row per enrolled connector. `token_id` is the `jti` of the only
-- valid token; re-enrolling or revoking replaces or clears it.
CREATE TABLE connectors (
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id               uuid NOT NULL,
    name             text NOT NULL,
    token_id         uuid,
    token_expires_at timestamptz,
    revoked_at       timestamptz,
    last_seen_at     timestamptz,
    version          text NOT NULL DEFAULT '',
    address          text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- Sources: what a connector's config names; announced in its Hello.
CREATE TABLE sources (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL,
    connector_id  uuid NOT NULL,
    name          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('caldav', 'carddav', 'imap')),
    user_id       uuid NOT NULL,
    mode          text NOT NULL,
    conflict      text NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, connector_id, name),
    FOREIGN KEY (tenant_id, connector_id) REFERENCES connectors(tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
);

-- Collections: calendars, address books, mailboxes of one user, each bound to one
-- back-end collection of one source. `journal_head` is the last journal sequence;
-- `cursor` the one the connector has seen; `backend_state` its resume point on the
-- back end (sync token, or IMAP uidvalidity:modseq).
CREATE TABLE collections (
    tenant_id       uuid NOT NULL,
    id              uuid NOT NULL,
    user_id         uuid NOT NULL,
    source_id       uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('calendar', 'addressbook', 'mailbox')),
    backend_href    text NOT NULL,
    display_name    text NOT NULL DEFAULT '',
    color           text NOT NULL DEFAULT '',
    mode            text NOT NULL,
    conflict        text NOT NULL,
    mode_override   boolean NOT NULL DEFAULT false,
    paused_reason   text,
    backend_state   text NOT NULL DEFAULT '',
    cursor          bigint NOT NULL DEFAULT 0,
    journal_head    bigint NOT NULL DEFAULT 0,
    uidvalidity     bigint,
    last_round_at   timestamptz,
    last_outcome    text NOT NULL DEFAULT '',
    last_detail     text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source_id, backend_href),
    FOREIGN KEY (tenant_id, source_id) REFERENCES sources(tenant_id, id) ON DELETE CASCADE
);

-- Items: events/todos, contacts, messages. `content` is the author's bytes as sent.
-- `pending_seq` is set while a gateway-side change waits for the back end (the
-- store-and-forward queue); the connector's acknowledgement clears it.
-- Deleted items stay as tombstones (`deleted`) so sync tokens can report them.
-- Mail: `flags`, and the IMAP identity in `backend_version` ("imap:UIDVALIDITY/UID/MODSEQ").
CREATE TABLE items (
    tenant_id        uuid NOT NULL,
    collection_id    uuid NOT NULL,
    id               uuid NOT NULL,
    uid              text NOT NULL DEFAULT '',
    name             text NOT NULL,
    content          bytea,
    content_type     text NOT NULL DEFAULT '',
    etag             text NOT NULL DEFAULT '',
    deleted          boolean NOT NULL DEFAULT false,
    backend_href     text,
    backend_version  text,
    pending_seq      bigint,
    last_seq         bigint NOT NULL DEFAULT 0,
    changed_at       timestamptz NOT NULL DEFAULT now(),
    flags            text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, collection_id, id),
    FOREIGN KEY (tenant_id, collection_id) REFERENCES collections(tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX items_backend_href ON items (tenant_id, collection_id, backend_href)
    WHERE backend_href IS NOT NULL;
CREATE UNIQUE INDEX items_live_name ON items (tenant_id, collection_id, name) WHERE NOT deleted;
CREATE INDEX items_pending ON items (tenant_id, collection_id) WHERE pending_seq IS NOT NULL;

-- The journal: every change to a collection, from any origin, in order.
CREATE TABLE journal (
    tenant_id      uuid NOT NULL,
    collection_id  uuid NOT NULL,
    seq            bigint NOT NULL,
    item_id        uuid NOT NULL,
    op             text NOT NULL CHECK (op IN ('upsert', 'delete')),
    origin         text NOT NULL CHECK (origin IN ('backend', 'gateway')),
    fencing_token  bigint,
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, collection_id, seq),
    FOREIGN KEY (tenant_id, collection_id) REFERENCES collections(tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX journal_item ON journal (tenant_id, collection_id, item_id, seq);

-- Leases: one row per collection ever leased. `fencing_token` only grows.
CREATE TABLE leases (
    tenant_id      uuid NOT NULL,
    collection_id  uuid NOT NULL,
    holder         text NOT NULL,
    connector_id   uuid NOT NULL,
    fencing_token  bigint NOT NULL,
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, collection_id),
    FOREIGN KEY (tenant_id, collection_id) REFERENCES collections(tenant_id, id) ON DELETE CASCADE
);

-- Versions that lost a conflict, kept until an operator resolves them.
CREATE TABLE conflicts (
    tenant_id      uuid NOT NULL,
    id             uuid NOT NULL,
    collection_id  uuid NOT NULL,
    item_id        uuid,
    uid            text NOT NULL DEFAULT '',
    loser_side     text NOT NULL CHECK (loser_side IN ('backend', 'gateway')),
    loser_content  bytea,
    policy         text NOT NULL,
    backend_href   text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, collection_id) REFERENCES collections(tenant_id, id) ON DELETE CASCADE
);

-- Gateway-wide settings, e.g. the generated token-signing key shared by all replicas.
CREATE TABLE settings (
    key    text PRIMARY KEY,
    value  text NOT NULL
);
