-- The state one process kept in memory and several worker processes must share
-- (issue 18: `[server] workers`), as PostgreSQL's pg_0002_cluster_state.sql keeps it for
-- several nodes. Times are seconds since the epoch. Expired rows are deleted now and
-- then by the writes that add rows (store/sqlite/cluster_state.py).

-- POP3 maildrop leases (RFC 1939 §4): one holder per account, renewed by its session
-- while it is open, so a worker that dies loses its locks when they expire.
CREATE TABLE pop_locks (
    account_id INTEGER PRIMARY KEY,
    holder     TEXT NOT NULL,
    until      REAL NOT NULL
);

-- Login-failure records, keyed "account:<address>" or "ip:<address>"
-- (services.account_throttle, services.auth); trusted: a JSON array of
-- [address, time of its last successful login] pairs, oldest first.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    last_failure REAL NOT NULL DEFAULT 0,
    next_allowed REAL NOT NULL DEFAULT 0,
    trusted      TEXT NOT NULL DEFAULT '[]',
    expires      REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX login_failures_expires ON login_failures(expires);

-- Webmail sessions (web.sessions): the sha256 of the cookie's id, never the id itself.
-- last_seen is written at most about once a minute per session.
CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created    REAL NOT NULL,
    last_seen  REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_account ON web_sessions(account_id);
CREATE INDEX web_sessions_last_seen ON web_sessions(last_seen);
