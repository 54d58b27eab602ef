"""IMAP server protocol core: bytes in, command events out; replies serialised in one place.

Sans-I/O and standard library only (never asyncio, socket, ssl, nor anything above
`pillarbox.proto`). It implements the wire side of RFC 9051 (IMAP4rev2) and RFC 3501
(IMAP4rev1) plus the extensions whose syntax it knows: LITERAL+/LITERAL- (RFC 7888),
BINARY (RFC 3516), MULTIAPPEND (RFC 3502), SASL-IR (RFC 4959), ENABLE (RFC 5161),
LIST-EXTENDED/LIST-STATUS/SPECIAL-USE (RFC 5258, 5819, 6154), ESEARCH/SEARCHRES
(RFC 4731, 5182), CONDSTORE/QRESYNC (RFC 7162), UIDPLUS (RFC 4315), MOVE (RFC 6851),
UNSELECT (RFC 3691), IDLE (RFC 2177), ID (RFC 2971), UTF8=ACCEPT (RFC 6855),
APPENDLIMIT (RFC 7889). Mailboxes, sequence numbers, UIDs, flags semantics, credentials,
TLS and timeouts stay in the server.

Modules
- `commands`   every event: one frozen dataclass per command, plus SequenceSet, the SEARCH
               key AST, FETCH items, `ContinuationNeeded`, `AuthenticateResponse`, `Done`,
               `ConnectionClosed`, `NEED_DATA`. A package with one module per command
               family; import the package, which re-exports every name.
- `connection` `ServerConnection`, `Limits`, `State`: framing (lines, literals), states.
- `parser`     the grammar's entry: `parse_command` reads the tag and command word of one
               framed command and dispatches on one table joined from `grammar`.
- `grammar`    the tokenizer (`chars`, `reader`, `dates`) and one module of parse functions
               per command family, the same families as `commands`.
- `responses`  all server output: untagged data, tagged OK/NO/BAD, continuations, strings,
               FETCH item builders.
- `mutf7`      modified UTF-7 mailbox names (RFC 3501 §5.1.3) for IMAP4rev1 sessions.

How a server drives a connection
    conn = ServerConnection(Limits(...))      # advertise APPENDLIMIT=limits.max_literal_size,
                                              # LITERAL+ (or LITERAL- with literal_minus=True)
    write(responses.untagged_ok("IMAP4rev2 ready", responses.capability_code(caps)))
    on every read:
        conn.receive_data(data)               # b"" at EOF
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError as e:
                write(e.reply_hint)           # exact bytes: "tag BAD ...", "* BAD ...",
                if e.fatal: close(); break    # "tag NO [TOOBIG] ...", "* BYE ..." (fatal)
                continue                      # the connection stays usable after a BAD
            if ev is NEED_DATA: break         # wait for more bytes
            handle(ev), one event at a time, before calling next_event() again:
              ContinuationNeeded      write(responses.continuation(b"Ready")); the core reads
                                      the literal on the next calls
              ConnectionClosed        close
              Login / Authenticate    on success conn.authenticated(); for a SASL round trip
                                      write(conn.auth_challenge(challenge)) and the next event
                                      is AuthenticateResponse(tag, data, cancelled) (cancelled
                                      → reply tag BAD); repeat or finish with tagged OK/NO
              StartTls                write(tagged OK); TLS handshake; conn.start_tls()
              Enable                  conn.enabled(names_enabled); UTF8=ACCEPT/IMAP4REV2 make
                                      quoted strings accept UTF-8 (read conn.utf8 to choose
                                      mailbox encodings in responses)
              Select / Examine        success conn.selected(read_only=...); failure while
                                      selected conn.unselected()
              Close / Unselect        conn.unselected()
              Idle                    write(conn.idle_accepted()); push updates; the next
                                      event is Done(tag) → write tagged OK
              Logout                  write(bye(), ok(tag)); conn.logged_out()
    Wrong-state commands, unknown commands, syntax errors and limits never reach the server:
    they come out as RemoteProtocolError. The core has no `send()`: it only needs to see the
    continuations that change how it reads (auth_challenge, idle_accepted); everything else is
    built with `responses` and written directly.

Errors: `pillarbox.proto.errors.RemoteProtocolError.reply_hint` is the exact reply.
"""

from pillarbox.proto.imap.commands import NEED_DATA
from pillarbox.proto.imap.connection import Limits, ServerConnection, State

__all__ = ["NEED_DATA", "Limits", "ServerConnection", "State"]
