"""The IMAP command grammar, in rooms: the tokenizer, then one module per command family.

`chars` holds the character classes and limits both directions share, `reader` the
`Reader` cursor and its token readers, `dates` the two date forms. The family modules
(`session`, `mailboxes`, `messages`, `fetch`, `search`) each own the parse functions of
their commands, following the ABNF of RFC 9051 §9 and the extension RFCs each names, and
export them as a `PARSERS` table. `pillarbox.proto.imap.parser` joins those tables into the
one it dispatches on; callers use `parser`, not these modules.

Must not: do I/O, know about connection states, mailboxes or credentials.
"""
