-- Identities (issue 14, webmail settings): the names a user writes as.
--
--  * One row per (account, address): the address is the account's own or an alias that
--    delivers to it (the service checks that; the store keeps what it is given).
--  * `display_name` goes into From: beside the address; `signature` is plain text that
--    the compose page appends below the body.
--  * `position` keeps the user's order (the first identity is the default one).
-- Identities go with their account (ON DELETE CASCADE).

CREATE TABLE identities (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address      TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    signature    TEXT NOT NULL DEFAULT '',
    position     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, address)
);
