-- Version 2: the state one process kept in memory and several nodes must share
-- (docs/plans/issue-17-postgres.md §4). Times are seconds since the epoch, from the
-- nodes' clocks (NTP), like blob_readers.until. The janitor deletes what has expired:
-- pop_locks.until, login_failures.expires, and web sessions past their lifetime.

-- POP3 maildrop leases (RFC 1939 §4): one holder per account, renewed by its session
-- while it is open, so a node that dies loses its locks when they expire.
CREATE TABLE pop_locks (
    account_id bigint PRIMARY KEY,
    holder     text COLLATE "C" NOT NULL,
    until      double precision NOT NULL
);

-- Login-failure records, keyed "account:<address>" or "ip:<address>"
-- (services.account_throttle, services.auth); trusted_ips/trusted_at are the addresses
-- the owner logged in from and when, oldest first.
CREATE TABLE login_failures (
    key          text COLLATE "C" PRIMARY KEY,
    failures     integer NOT NULL DEFAULT 0,
    last_failure double precision NOT NULL DEFAULT 0,
    next_allowed double precision NOT NULL DEFAULT 0,
    trusted_ips  text[] COLLATE "C" NOT NULL DEFAULT '{}',
    trusted_at   double precision[] NOT NULL DEFAULT '{}',
    expires      double precision NOT NULL DEFAULT 0
);
CREATE INDEX login_failures_expires ON login_failures(expires);

-- Webmail sessions (web.sessions): the sha256 of the cookie's id, never the id itself.
-- last_seen is written at most about once a minute per session.
CREATE TABLE web_sessions (
    id_hash    text COLLATE "C" PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf       text COLLATE "C" NOT NULL,
    created    double precision NOT NULL,
    last_seen  double precision NOT NULL
);
CREATE INDEX web_sessions_account ON web_sessions(account_id);
CREATE INDEX web_sessions_last_seen ON web_sessions(last_seen);
