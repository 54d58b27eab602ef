-- Fetch scheduling and flag sync (issue 15, second slice).
--
--  * `failures` counts consecutive failed runs of any kind (the scheduler's back-off);
--    `auth_failures` (0009) still counts the authentication failures that pause a source.
--  * `claim_holder` / `claim_until`: the node running or watching the source, until when.
--    One node per source is the PostgreSQL story; SQLite has one node, but the seam is here.
--  * `fetch_folders.highestmodseq`: the source folder's HIGHESTMODSEQ when its flags were
--    last carried across (RFC 7162 §3.1.2.1), 0 before the first time.
--  * `fetch_fetched.local_mailbox` / `local_uid`: where the copy went, so that a flag
--    change on the source reaches it (NULL for rows written before this migration and for
--    records of messages skipped as duplicates); `remote_flags`: the flags carried across
--    as the source last had them (a JSON list; NULL: not known), so that only what
--    changed there is changed here.

ALTER TABLE fetch_sources ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fetch_sources ADD COLUMN claim_holder TEXT NOT NULL DEFAULT '';
ALTER TABLE fetch_sources ADD COLUMN claim_until REAL;
ALTER TABLE fetch_folders ADD COLUMN highestmodseq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fetch_fetched ADD COLUMN local_mailbox INTEGER;
ALTER TABLE fetch_fetched ADD COLUMN local_uid INTEGER;
ALTER TABLE fetch_fetched ADD COLUMN remote_flags TEXT;
