-- Moves made on the gateway (issue 11): a client moved a message to another mailbox.
-- The copy in the destination keeps where the message is on the back end (its
-- mailbox's href and its href there, as they were at the move), so the connector moves
-- it on the back end (UID MOVE) instead of appending its bytes again; the source's
-- deletion says that the message moved (`moved_away`), so the connector does not
-- expunge it there: the move takes it.
ALTER TABLE items
    ADD COLUMN moved_from_collection text,
    ADD COLUMN moved_from_href text,
    ADD COLUMN moved_away boolean NOT NULL DEFAULT false;
