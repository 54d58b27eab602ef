-- SQLite schema, version 1. Applied by pillarbox.store.sqlite_schema in one transaction.
--
-- Layout notes (see docs "store internals"):
--  * messages is narrow and keyed by (mailbox_id, uid) WITHOUT ROWID, so FLAGS fetches,
--    STORE and expunge are range scans over one B-tree.
--  * Everything that is a function of the message bytes (size, precomputed IMAP bytes,
--    search columns, full text) hangs off the blob, so COPY shares it.
--  * Reference counts and quota usage are kept by triggers so bulk statements
--    (INSERT ... SELECT, DELETE ... WHERE) keep them right without per-row Python.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE domains (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY,
    address         TEXT NOT NULL UNIQUE,
    domain_id       INTEGER NOT NULL REFERENCES domains(id),
    password_hash   TEXT NOT NULL,
    quota_bytes     INTEGER NOT NULL DEFAULT 0,
    used_bytes      INTEGER NOT NULL DEFAULT 0,
    pop_on_retrieve TEXT NOT NULL DEFAULT 'delete',
    pop_scope       TEXT NOT NULL DEFAULT 'all',
    pop_min_uid     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX accounts_domain ON accounts(domain_id);

CREATE TABLE aliases (
    source    TEXT NOT NULL,
    target    TEXT NOT NULL,
    domain_id INTEGER NOT NULL REFERENCES domains(id),
    position  INTEGER NOT NULL,
    PRIMARY KEY (source, target)
) WITHOUT ROWID;
CREATE INDEX aliases_domain ON aliases(domain_id);

CREATE TABLE mailboxes (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    name          TEXT NOT NULL,
    uidvalidity   INTEGER NOT NULL,
    uidnext       INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    special_use   TEXT,
    UNIQUE (account_id, name)
);

CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

CREATE TABLE blobs (
    id            INTEGER PRIMARY KEY,
    size          INTEGER NOT NULL,
    refs          INTEGER NOT NULL DEFAULT 0,
    envelope      BLOB,
    bodystructure BLOB,
    body          BLOB,
    parts         TEXT,
    preview       TEXT,
    subject       TEXT NOT NULL DEFAULT '',
    from_         TEXT NOT NULL DEFAULT '',
    to_           TEXT NOT NULL DEFAULT '',
    cc            TEXT NOT NULL DEFAULT '',
    bcc           TEXT NOT NULL DEFAULT '',
    message_id    TEXT NOT NULL DEFAULT '',
    sent_date     TEXT,           -- ISO 8601 with offset, as given
    sent_day      TEXT            -- YYYY-MM-DD in the header's own zone (RFC 9051 §6.4.4)
);
CREATE INDEX blobs_unreferenced ON blobs(id) WHERE refs <= 0;

-- Substring search for SEARCH TEXT/BODY (RFC 9051 §6.4.4): rowid = blobs.id.
CREATE VIRTUAL TABLE blob_text USING fts5(
    headers, body_text, tokenize = 'trigram case_sensitive 0'
);

CREATE TABLE messages (
    mailbox_id   INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    modseq       INTEGER NOT NULL,
    flags        INTEGER NOT NULL DEFAULT 0,  -- bit i = model.SYSTEM_FLAGS[i]
    pop_hidden   INTEGER NOT NULL DEFAULT 0,
    internaldate INTEGER NOT NULL,            -- UTC epoch seconds
    internal_tz  INTEGER NOT NULL DEFAULT 0,  -- offset of the original zone, minutes
    size         INTEGER NOT NULL,
    blob_id      INTEGER NOT NULL REFERENCES blobs(id),
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);

CREATE TABLE keywords (
    mailbox_id INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    keyword    TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (mailbox_id, uid, keyword)
) WITHOUT ROWID;
CREATE INDEX keywords_by_name ON keywords(mailbox_id, keyword);

-- RFC 7162 §3.2.5.1: expunged UIDs with the MODSEQ of their expunge, for QRESYNC.
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);

CREATE TABLE queue (
    id           INTEGER PRIMARY KEY,
    sender       TEXT NOT NULL,
    blob_id      INTEGER NOT NULL REFERENCES blobs(id),
    created_at   INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    dsn_envid    TEXT,
    dsn_ret      TEXT,
    last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX queue_due ON queue(next_attempt);

CREATE TABLE queue_recipients (
    queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    address  TEXT NOT NULL,
    notify   TEXT,
    orcpt    TEXT,
    PRIMARY KEY (queue_id, position)
) WITHOUT ROWID;

CREATE TRIGGER messages_insert AFTER INSERT ON messages BEGIN
    UPDATE blobs SET refs = refs + 1 WHERE id = NEW.blob_id;
    UPDATE accounts SET used_bytes = used_bytes + NEW.size
        WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;

CREATE TRIGGER messages_delete AFTER DELETE ON messages BEGIN
    UPDATE blobs SET refs = refs - 1 WHERE id = OLD.blob_id;
    UPDATE accounts SET used_bytes = used_bytes - OLD.size
        WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
    DELETE FROM keywords WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;
END;

CREATE TRIGGER queue_insert AFTER INSERT ON queue BEGIN
    UPDATE blobs SET refs = refs + 1 WHERE id = NEW.blob_id;
END;

CREATE TRIGGER queue_delete AFTER DELETE ON queue BEGIN
    UPDATE blobs SET refs = refs - 1 WHERE id = OLD.blob_id;
END;
