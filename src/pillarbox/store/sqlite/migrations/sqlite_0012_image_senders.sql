-- Senders whose remote images the account's webmail shows without asking (issue 14,
-- "Reading"): one row per (account, sender address), the address in canonical form
-- (`rules.addresses`, as services give it). Goes with its account (ON DELETE CASCADE).

CREATE TABLE image_senders (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    added_at   REAL NOT NULL,
    PRIMARY KEY (account_id, address)
) WITHOUT ROWID;
