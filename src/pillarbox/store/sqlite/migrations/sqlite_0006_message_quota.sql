-- A limit on the number of messages of an account (RFC 9208 §5.2, the MESSAGE resource),
-- next to the byte limit of 0001.
--
--  * quota_messages is the limit (0: none), used_messages the count of the account's
--    messages in every mailbox (\Deleted ones too, until they are expunged). The count is
--    kept by the same triggers as used_bytes, so the check at delivery reads one row
--    instead of counting the account's messages.
--  * The triggers of 0001 are replaced by ones that keep both counters; the count of
--    existing accounts is filled in once here.

ALTER TABLE accounts ADD COLUMN quota_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN used_messages INTEGER NOT NULL DEFAULT 0;

UPDATE accounts SET used_messages = (
    SELECT count(*) FROM messages AS m JOIN mailboxes AS b ON b.id = m.mailbox_id
    WHERE b.account_id = accounts.id
);

DROP TRIGGER messages_insert;
CREATE TRIGGER messages_insert AFTER INSERT ON messages BEGIN
    UPDATE blobs SET refs = refs + 1 WHERE id = NEW.blob_id;
    UPDATE accounts SET used_bytes = used_bytes + NEW.size, used_messages = used_messages + 1
        WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;

DROP TRIGGER messages_delete;
CREATE TRIGGER messages_delete AFTER DELETE ON messages BEGIN
    UPDATE blobs SET refs = refs - 1 WHERE id = OLD.blob_id;
    UPDATE accounts SET used_bytes = used_bytes - OLD.size, used_messages = used_messages - 1
        WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
    DELETE FROM keywords WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;
END;
