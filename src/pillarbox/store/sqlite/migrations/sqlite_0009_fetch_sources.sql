-- Fetch sources (issue 15): the user's accounts at other providers, and what was fetched
-- from each.
--
--  * `password` is ciphertext made with the server's key, which lives outside the
--    database (services.fetch_sources); the store never sees the password itself.
--  * `source_folders` is a JSON list of IMAP folder names ([] means INBOX).
--  * Times are UTC epoch seconds (REAL, as dkim_keys.created_at).
--  * `fetch_fetched` holds one row per remote message stored here: POP3 rows have
--    folder '' and the UIDL as remote_id (RFC 1939 §7); IMAP rows the UID as text under
--    its UIDVALIDITY (RFC 9051 §2.3.1.1). `digest` is the header-block hash that
--    recognises a message again under a new UIDVALIDITY. A row is written in the same
--    transaction as the message's local copy.
--  * `fetch_folders` is where each IMAP folder's last run stopped.
-- Everything goes with its source, and a source with its account (ON DELETE CASCADE).

CREATE TABLE fetch_sources (
    id                INTEGER PRIMARY KEY,
    account_id        INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    protocol          TEXT NOT NULL,
    host              TEXT NOT NULL,
    port              INTEGER NOT NULL,
    security          TEXT NOT NULL,
    username          TEXT NOT NULL,
    password          BLOB NOT NULL,
    target_folder     TEXT NOT NULL,
    source_folders    TEXT NOT NULL DEFAULT '[]',
    remote_action     TEXT NOT NULL DEFAULT 'keep',
    delete_after_days INTEGER NOT NULL DEFAULT 0,
    interval          INTEGER NOT NULL,
    created_at        REAL NOT NULL,
    last_run_at       REAL,
    last_result       TEXT NOT NULL DEFAULT '',
    last_error        TEXT NOT NULL DEFAULT '',
    last_error_at     REAL,
    auth_failures     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX fetch_sources_account ON fetch_sources(account_id);

CREATE TABLE fetch_folders (
    source_id   INTEGER NOT NULL REFERENCES fetch_sources(id) ON DELETE CASCADE,
    folder      TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    PRIMARY KEY (source_id, folder)
) WITHOUT ROWID;

CREATE TABLE fetch_fetched (
    source_id   INTEGER NOT NULL REFERENCES fetch_sources(id) ON DELETE CASCADE,
    folder      TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL DEFAULT 0,
    remote_id   TEXT NOT NULL,
    digest      TEXT NOT NULL,
    fetched_at  REAL NOT NULL,
    PRIMARY KEY (source_id, folder, uidvalidity, remote_id)
) WITHOUT ROWID;
CREATE INDEX fetch_fetched_digest ON fetch_fetched(source_id, folder, digest);
