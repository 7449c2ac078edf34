-- Mail (issue 11). A message's bytes never change; its flags do. So:
--
-- * Bodies are stored once per tenant and content hash, in `message_bodies`, with
--   STORAGE EXTERNAL (out of line, uncompressed) so that `substring(body FROM o FOR n)`
--   reads only the pages holding that range: a client's `BODY[]<0.65536>` of a 30 MB
--   message does not load 30 MB. Never shared across tenants.
-- * An item of a mailbox points at its body by hash and keeps what clients ask for
--   without the body: size, internal date, Message-ID, and the flags both sides last
--   agreed on (`base_flags`, the base of the per-flag merge).
-- * Each mailbox numbers its messages for IMAP clients with its own UIDs
--   (`gateway_uid`, from `next_gateway_uid`) under its own UIDVALIDITY
--   (`gateway_uidvalidity`): a back-end reset re-keys the back-end identity
--   (`items.backend_version`, `collections.uidvalidity`) and clients never see it.
--   The gateway's UIDVALIDITY changes only if the gateway loses the mailbox's state.

CREATE TABLE message_bodies (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    size        bigint NOT NULL CHECK (size >= 0),
    body        bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256),
    CHECK (length(body) = size)
);
ALTER TABLE message_bodies ALTER COLUMN body SET STORAGE EXTERNAL;

ALTER TABLE items
    ADD COLUMN body_sha256    bytea,
    ADD COLUMN size           bigint,
    ADD COLUMN internal_date  timestamptz,
    ADD COLUMN message_id     text,
    ADD COLUMN base_flags     text[],
    ADD COLUMN gateway_uid    bigint,
    ADD CONSTRAINT items_body FOREIGN KEY (tenant_id, body_sha256)
        REFERENCES message_bodies (tenant_id, sha256);
-- One gateway UID names one message of a mailbox, deleted ones included: a UID is
-- never given twice (RFC 9051 §2.3.1.1).
CREATE UNIQUE INDEX items_gateway_uid ON items (tenant_id, collection_id, gateway_uid)
    WHERE gateway_uid IS NOT NULL;
-- Finding a message by content (a retried APPEND, a move, a UIDVALIDITY reset).
CREATE INDEX items_body_sha256 ON items (tenant_id, collection_id, body_sha256)
    WHERE body_sha256 IS NOT NULL;

ALTER TABLE collections
    ADD COLUMN mailbox_name         text,
    ADD COLUMN delimiter            text,
    ADD COLUMN role                 text CHECK (role IN ('inbox', 'sent', 'drafts', 'trash',
                                        'junk', 'archive', 'all', 'flagged')),
    ADD COLUMN noselect             boolean NOT NULL DEFAULT false,
    ADD COLUMN mailbox_id           text,
    -- The time in seconds when the mailbox was made: a 32-bit value that grows, so a
    -- mailbox made again after the gateway lost one gets a new value.
    ADD COLUMN gateway_uidvalidity  bigint NOT NULL
        DEFAULT (extract(epoch FROM now())::bigint % 4294967295) + 1,
    ADD COLUMN next_gateway_uid     bigint NOT NULL DEFAULT 1;

-- Sources may be SMTP relays (the contract's `kind = "smtp"`).
ALTER TABLE sources DROP CONSTRAINT sources_kind_check;
ALTER TABLE sources ADD CONSTRAINT sources_kind_check
    CHECK (kind IN ('caldav', 'carddav', 'imap', 'smtp'));

-- Bodies too large for one link message arrive in parts (BodyPart) and are assembled
-- here when the packet naming the upload is applied; parts of an upload never named
-- are removed after a day.
CREATE TABLE body_uploads (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    upload_id   uuid NOT NULL,
    "offset"    bigint NOT NULL CHECK ("offset" >= 0),
    total       bigint NOT NULL CHECK (total >= 0),
    data        bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, upload_id, "offset")
);
ALTER TABLE body_uploads ALTER COLUMN data SET STORAGE EXTERNAL;
