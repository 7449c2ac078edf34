-- Collections created or deleted by DAV clients on the gateway wait for the connector
-- to do the same on the back end.
ALTER TABLE collections ADD COLUMN create_pending boolean NOT NULL DEFAULT false;
ALTER TABLE collections ADD COLUMN delete_pending boolean NOT NULL DEFAULT false;
