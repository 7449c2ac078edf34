-- How far the round in progress (or the last one) got, as its connector reports it:
-- a phase ("fetching", "writing", "pushing") and a count out of a total. `admin status`
-- shows it while a long round runs; `admin collection resync --wait` follows it, and
-- knows the round it waits for by its fencing token (`last_round_token`): a round that
-- began after the resync holds a newer lease than any round before it.
ALTER TABLE collections
    ADD COLUMN last_round_token bigint NOT NULL DEFAULT 0,
    ADD COLUMN progress_phase text NOT NULL DEFAULT '',
    ADD COLUMN progress_done  bigint NOT NULL DEFAULT 0,
    ADD COLUMN progress_total bigint NOT NULL DEFAULT 0,
    ADD COLUMN progress_at    timestamptz;
