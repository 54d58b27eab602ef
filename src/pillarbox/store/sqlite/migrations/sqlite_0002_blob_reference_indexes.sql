-- Deleting a blob row (its last message expunged) makes SQLite look for rows that still
-- refer to it, to enforce the foreign keys on messages.blob_id and queue.blob_id. With
-- no index to look in, each check scanned every message: an EXPUNGE cost grew with the
-- size of the whole store (half the writer's time with 100,000 messages in one folder).
CREATE INDEX messages_blob ON messages(blob_id);
CREATE INDEX queue_blob ON queue(blob_id);
