-- SMTP submission (issue 12). A user may send only from their own addresses; a
-- message is accepted only once it and its envelope are here, in the outbox, from
-- where a connector's `smtp` source relays it to the corporate server.

-- The addresses a user may send as (envelope sender and From:), kept in lower case.
-- An address belongs to one user of a tenant.
CREATE TABLE user_addresses (
    tenant_id   uuid NOT NULL,
    user_id     uuid NOT NULL,
    address     text NOT NULL CHECK (address = lower(address) AND address LIKE '%_@_%'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, address),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_addresses_user ON user_addresses (tenant_id, user_id);

-- Messages accepted for sending. The bytes are a message body like any other
-- (`message_bodies`, held once); the envelope is kept beside it. `state` moves from
-- 'queued' to 'sent' or 'failed' (a permanent refusal, reported to the user).
CREATE TABLE outbox (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL,
    user_id       uuid NOT NULL,
    mail_from     text NOT NULL,
    rcpt_to       text[] NOT NULL CHECK (cardinality(rcpt_to) > 0),
    body_sha256   bytea NOT NULL,
    size          bigint NOT NULL,
    state         text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    -- After a temporary failure, not handed out again before this.
    next_attempt  timestamptz NOT NULL DEFAULT now(),
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    done_at       timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, body_sha256) REFERENCES message_bodies(tenant_id, sha256)
);
-- What waits, per user; and a user's sending in the last hour (the rate limit).
CREATE INDEX outbox_queued ON outbox (tenant_id, user_id, created_at) WHERE state = 'queued';
CREATE INDEX outbox_recent ON outbox (tenant_id, user_id, created_at);
-- Bodies an outbox message holds are not collected (store::body_gc).
CREATE INDEX outbox_body ON outbox (tenant_id, body_sha256);
