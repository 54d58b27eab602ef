-- Which node holds a queue entry's claim (issue 17: several nodes on one PostgreSQL
-- database; the SQLite backend keeps the same column and the same behaviour, so a
-- runner's `release_claims` at start releases only what this node held, and
-- `pillarbox migrate-store` copies the column as it is).
--
--  * '' means "no node recorded": the entry is unclaimed, or it was claimed before this
--    migration by the one process that served the store then (an earlier run), whose
--    claims the next start releases like its own.
--  * Set together with claimed_until by a claim, cleared with it by a reschedule or a
--    release.

ALTER TABLE queue ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
