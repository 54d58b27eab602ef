-- Issue 18: one sync per acknowledged message. The text SEARCH TEXT/BODY/HEADER needs
-- is written here, in the delivery's own transaction, instead of being committed to
-- search.db (its own fsync) before the row; the text index thread copies it into
-- search.db after the commit and then deletes it here. SEARCH reads these rows as
-- well as search.db's, so results stay exact while the index catches up.
-- (blob_id, headers as given, body text casefolded: search.db's TEXT_VERSION 1.)
CREATE TABLE text_pending (
    blob_id   INTEGER PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
    headers   TEXT NOT NULL,
    body_text TEXT NOT NULL
);
