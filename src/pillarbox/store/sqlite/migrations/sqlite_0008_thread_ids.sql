-- THREADID (RFC 8474 §5.2): every message row keeps the id of its thread, decided when
-- it is stored (see `model.objectids`; COPY and MOVE copy it). `thread_ids` says, per
-- account, which thread each Message-ID a stored message named (its own, its
-- References, its In-Reply-To) belongs to: delivery looks its keys up there (one
-- primary-key probe for all of them) and adds the ones it did not find.
--
--  * A thread id is the blob id of the message that started the thread: random,
--    never handed out twice, so never another thread's.
--  * Rows outlive the messages that put them there (a late reply still finds its
--    thread); they go with the account.

ALTER TABLE messages ADD COLUMN thread_id INTEGER;

CREATE TABLE thread_ids (
    account_id INTEGER NOT NULL,
    msgid      TEXT NOT NULL,
    thread_id  INTEGER NOT NULL,
    PRIMARY KEY (account_id, msgid)
) WITHOUT ROWID;

-- Backfill, set-based. A stored message's thread is known by its thread root: the
-- first msg-id of its References (RFC 5322 §3.6.4: a reply's References start with
-- the root's), or its own Message-ID when it has no References. Messages of one
-- account with the same root are one thread, whose id is the least of their blob ids;
-- a message with neither gets a thread of its own. Not reached here, and so left
-- apart: In-Reply-To without References (it is only inside the ENVELOPE bytes), and
-- References of blobs stored before `thread_refs` existed (NULL: only in the text
-- index). New messages reach both.
CREATE TEMP TABLE thread_backfill AS
SELECT f.account_id, f.mailbox_id, f.uid, f.blob_id, f.own,
       CASE
           WHEN f.refs <> '' AND instr(f.refs, ' ') > 0
               THEN substr(f.refs, 1, instr(f.refs, ' ') - 1)
           WHEN f.refs <> '' THEN f.refs
           ELSE f.own
       END AS root
FROM (
    SELECT x.account_id, m.mailbox_id, m.uid, m.blob_id,
           coalesce(b.thread_refs, '') AS refs,
           CASE WHEN trim(b.message_id) GLOB '<?*@?*>'
                 AND instr(trim(b.message_id), ' ') = 0
                THEN trim(b.message_id) END AS own
    FROM messages AS m
    JOIN mailboxes AS x ON x.id = m.mailbox_id
    JOIN blobs AS b ON b.id = m.blob_id
) AS f;

CREATE TEMP TABLE thread_roots AS
SELECT account_id, root, min(blob_id) AS thread_id
FROM thread_backfill WHERE root IS NOT NULL
GROUP BY account_id, root;

UPDATE messages SET thread_id = blob_id;

UPDATE messages SET thread_id = r.thread_id
FROM thread_backfill AS f
JOIN thread_roots AS r ON r.account_id = f.account_id AND r.root = f.root
WHERE messages.mailbox_id = f.mailbox_id AND messages.uid = f.uid;

INSERT OR IGNORE INTO thread_ids (account_id, msgid, thread_id)
SELECT account_id, root, thread_id FROM thread_roots;

INSERT OR IGNORE INTO thread_ids (account_id, msgid, thread_id)
SELECT f.account_id, f.own, m.thread_id
FROM thread_backfill AS f
JOIN messages AS m ON m.mailbox_id = f.mailbox_id AND m.uid = f.uid
WHERE f.own IS NOT NULL;

DROP TABLE thread_roots;
DROP TABLE thread_backfill;
