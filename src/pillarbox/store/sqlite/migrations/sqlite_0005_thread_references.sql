-- THREAD=REFERENCES (RFC 5256 §3) needs each message's References: the msg-ids of the
-- field, space-separated, computed at delivery like the other search columns.
--
--  * NULL means the blob was stored before this column existed: readers then take the
--    References field from the decoded header text of the full-text index (blob_text),
--    in the same query. New deliveries always fill it ('' when there is none).

ALTER TABLE blobs ADD COLUMN thread_refs TEXT;
