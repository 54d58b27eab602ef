-- Messages by thread within a mailbox: IMAP SEARCH THREADID (RFC 8474 §5.2) and the
-- webmail's conversations (one conversation opened, a page's conversations counted)
-- look rows up by thread id; without this they scanned the whole mailbox.
CREATE INDEX messages_thread ON messages (mailbox_id, thread_id);
