-- The substring index keeps no token positions (FTS5 detail=none): about a third of the
-- size and a third less work per delivery than detail=full. Phrase queries need positions,
-- so a search now asks the index for rows holding every trigram of the string and checks
-- the string itself against the stored text (sqlite_search.py). RFC 9051 §6.4.4.
CREATE VIRTUAL TABLE blob_text_v2 USING fts5(
    headers, body_text, tokenize = 'trigram case_sensitive 0', detail = none
);
INSERT INTO blob_text_v2 (rowid, headers, body_text)
    SELECT rowid, headers, body_text FROM blob_text;
DROP TABLE blob_text;
ALTER TABLE blob_text_v2 RENAME TO blob_text;
