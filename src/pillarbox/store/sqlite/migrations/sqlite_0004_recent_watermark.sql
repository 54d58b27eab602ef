-- \Recent for IMAP4rev1 sessions (RFC 3501 §2.3.2): each mailbox keeps the highest UID
-- some session has already taken as recent. UIDs above it are recent for the next
-- session that selects the mailbox, which moves it up in the same transaction.
--
--  * Existing mailboxes start with every message already taken (uidnext - 1): after the
--    upgrade only mail that arrives from now on is recent.

ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET recent_uid = uidnext - 1;
