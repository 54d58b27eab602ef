"""POP3 server protocol core: bytes in, command events out, replies built in one place.

Sans-I/O, standard library only (never asyncio, socket, ssl, nor anything above
`pillarbox.proto`). RFC 1939 (POP3), RFC 2449 (CAPA, response codes, PIPELINING),
RFC 2595 (STLS), RFC 5034 (AUTH with initial response), RFC 3206 (AUTH-RESP-CODE),
RFC 6856 (UTF8). APOP is not offered: it needs plain-text passwords on the server.

Modules
- `events`      one frozen dataclass per command, `ConnectionClosed`, `NEED_DATA`.
- `connection`  `ServerConnection`, `Limits`, `State`: framing, syntax, state table.
- `responses`   every byte sent: ``+OK``/``-ERR`` with codes, multi-line listings,
                `ChunkStuffer` (streamed RETR), `TopFilter` (TOP), AUTH challenges.
SASL mechanisms (PLAIN, LOGIN) are `pillarbox.proto.sasl`, shared with SMTP and IMAP.

How a server drives a connection
    conn = ServerConnection(Limits(...), tls_active=..., stls_available=...)
    write(responses.ok("Pillarbox POP3 server ready"))       # greeting
    loop:
        conn.receive_data(await read())                        # b"" at EOF
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError as e:
                write(e.reply_hint)                            # the exact -ERR line
                if e.fatal: close(); break
                continue                                       # session stays usable
            if ev is NEED_DATA: break
            match ev:
                Pass()/Auth() ok:   lock the maildrop, conn.authenticated()
                Auth() without initial response: write(conn.auth_challenge(b""))
                                    -> the next event is AuthResponse
                Stls():             write(ok(...)); start TLS; conn.tls_started()
                Quit():             conn.state is UPDATE: commit DELEs; answer; close
                ConnectionClosed(): close, committing nothing
"""

from pillarbox.proto.pop3.connection import Limits, ServerConnection, State
from pillarbox.proto.pop3.events import NEED_DATA

__all__ = ["NEED_DATA", "Limits", "ServerConnection", "State"]
