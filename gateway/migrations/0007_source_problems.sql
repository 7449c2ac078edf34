-- What keeps a source from syncing, as its connector said in its last hello (empty:
-- nothing): a kind the connector cannot sync, for now. `admin status`, `admin source
-- list` and /metrics show it, so no source is skipped silently.
ALTER TABLE sources ADD COLUMN problem text NOT NULL DEFAULT '';
-- Collections deleted by clients keep their row until the connector has deleted them
-- on the back end; their names are freed at once (see delete_dav_collection).
