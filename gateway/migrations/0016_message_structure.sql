-- What the IMAP endpoint computes from a message's bytes for FETCH ENVELOPE, BODY
-- and BODYSTRUCTURE, kept once per body (as Dovecot keeps it in its cache file): a
-- client filling its cache then reads a few hundred bytes per message, not the
-- message. Computed on the first FETCH that asks; `version` names the computation,
-- so a row another version of the gateway made is computed again, never served.
CREATE TABLE message_structure (
    tenant_id   uuid NOT NULL,
    sha256      bytea NOT NULL,
    version     smallint NOT NULL,
    envelope    text NOT NULL,    -- JSON of the ENVELOPE
    body        text NOT NULL,    -- JSON of BODY (no extension data)
    structure   text NOT NULL,    -- JSON of BODYSTRUCTURE
    PRIMARY KEY (tenant_id, sha256),
    FOREIGN KEY (tenant_id, sha256) REFERENCES message_bodies(tenant_id, sha256) ON DELETE CASCADE
);
