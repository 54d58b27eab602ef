-- Outbound delivery (issue 12): per-recipient state, the entry's origin, delay warning
-- and claim, and the DKIM signing keys of local domains.
--
--  * Existing rows read as they did: every recipient still queued, origin 'forward'
--    (nothing recorded whether an older entry was submitted), no warning sent, not held.
--  * claimed_until is a lease in epoch seconds (NULL: nobody holds the entry). A worker
--    that dies leaves it to expire; no other claim returns the entry before then.
--  * Timestamps of the queue may carry fractions of a second (REAL values in INTEGER
--    columns keep them), so a scheduled time reads back as it was written.
--  * The blob reference triggers (queue_insert, queue_delete) are unchanged: a queue row
--    still holds exactly one reference to its blob whatever its recipients' states.

ALTER TABLE queue ADD COLUMN origin TEXT NOT NULL DEFAULT 'forward';
ALTER TABLE queue ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN claimed_until REAL;

ALTER TABLE queue_recipients ADD COLUMN state TEXT NOT NULL DEFAULT 'queued';
ALTER TABLE queue_recipients ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE queue_recipients ADD COLUMN diagnostic TEXT NOT NULL DEFAULT '';
ALTER TABLE queue_recipients ADD COLUMN remote_mta TEXT NOT NULL DEFAULT '';

CREATE TABLE dkim_keys (
    domain      TEXT NOT NULL,   -- canonical (A-label) domain name
    selector    TEXT NOT NULL,
    algorithm   TEXT NOT NULL,   -- 'ed25519-sha256' or 'rsa-sha256'
    private_key BLOB NOT NULL,   -- PEM (PKCS#8)
    public_key  TEXT NOT NULL,   -- base64, as published in p=
    created_at  REAL NOT NULL,   -- epoch seconds
    PRIMARY KEY (domain, selector)
) WITHOUT ROWID;
