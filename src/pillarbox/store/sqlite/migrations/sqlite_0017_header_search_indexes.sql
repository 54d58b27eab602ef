-- SEARCH SUBJECT / FROM (RFC 9051 §6.4.4) test every message of the mailbox against one
-- header column of its blob. Read through the blob rows themselves, each test loads a
-- wide row (envelope, body structure, part offsets, preview: about 1 KB); these narrow
-- covering indexes hold only the id and the column, so the same test touches a few
-- times fewer pages (issue 18: 2-3 times faster on a 20,000-message folder). The query
-- names them (`search.build`), since the planner prefers the table's own rowid lookup.
CREATE INDEX blobs_subject ON blobs(id, subject);
CREATE INDEX blobs_from ON blobs(id, from_);
