-- SAVEDATE (RFC 8514 §3): when a message was saved in its current mailbox (APPEND,
-- delivery, COPY, MOVE), which INTERNALDATE is not (APPEND may set it to any date, and
-- COPY keeps it).
--
--  * UTC epoch seconds, like internaldate.
--  * NULL means the row was saved before this column existed: readers then answer its
--    INTERNALDATE, the same fallback RFC 8514 §4.3 gives the SAVED* search keys, rather
--    than rewriting every row of an existing store here.

ALTER TABLE messages ADD COLUMN savedate INTEGER;
