"""Protocol errors that carry the reply the peer must get.

`RemoteProtocolError` means the peer broke the rules: the front-end sends
`reply_hint` (already a full wire line such as ``b"500 5.5.2 Syntax error\\r\\n"``)
and, if `fatal`, closes the connection. `LocalProtocolError` means our own code asked
the core for something impossible (a bug), and must never be shown to a client.
"""


class ProtocolError(Exception):
    """Base class."""


class LocalProtocolError(ProtocolError):
    """We misused the core (sent a reply in the wrong state...)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something invalid; `reply_hint` is the exact reply to send."""

    def __init__(self, message: str, reply_hint: bytes, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.reply_hint = reply_hint
        self.fatal = fatal
