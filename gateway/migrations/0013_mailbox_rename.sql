-- Mailboxes renamed by clients on the gateway (issue 11): the new name shows at once
-- (display_name, mailbox_name) and `rename_to` holds it until the connector has renamed
-- the mailbox on the back end and bound the collection to its new href.
ALTER TABLE collections ADD COLUMN rename_to text;
