-- Issue 18, the file's fsync overlapped with the row's commit: a row may now commit
-- while its message file is still being synced (the 250 / APPEND OK still waits for
-- both). Each blob whose file was not known durable when its row was written is listed
-- here, in that same transaction, with the size and CRC-32 of its bytes; the entry is
-- deleted (without an fsync of its own) once the sync has completed. At open, the
-- store that collects orphans checks every file listed and removes the rows of a blob
-- whose file is missing, short or different: never acknowledged, since an
-- acknowledgement waits for the sync.
CREATE TABLE pending_files (
    blob_id INTEGER PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
    size    INTEGER NOT NULL,
    crc     INTEGER NOT NULL
);
