"""Fetching the users' mail from their accounts at other providers (POP3 and IMAP).

A front-end turned around: a client of other servers that hands each message to
`services.fetch_delivery`, like the SMTP front-end hands what it receives to
`services.delivery`. `network` opens checked connections (no private addresses unless
allowed, verified TLS, never a fall-back to plain text), `pop3` and `imap` speak the
protocols with bounded lines and sizes, `runner` runs one source: what to fetch, what to
skip, what to delete remotely and when.

Decision: the protocol clients are blocking (our small POP3 client, the stdlib's
imaplib) and each network step runs in a worker thread (`asyncio.to_thread`); the store
calls stay on the event loop. imaplib's parsing of FETCH responses and literals is
mature and lets `read`/`readline`/`open` be overridden, which is where the address check
and the size bounds go; a POP3 client is small enough to write so that its line reader
can see data a server pipelined before a STARTTLS handshake. A fetch is a few
connections at a time, so a thread each costs nothing that matters.

Must not: import the store or another front-end, or log a password.
"""
