"""The SASL PLAIN message (RFC 4616 §2), decoded for POP3 AUTH PLAIN (RFC 5034).

A stop-gap until `pillarbox.proto.sasl` lands: the server calls only `decode_plain`, so
switching to the shared step machine changes one call site. No credential lookup here.
"""

from __future__ import annotations

from dataclasses import dataclass


class PlainError(ValueError):
    """The PLAIN message is malformed."""


@dataclass(frozen=True, slots=True)
class PlainCredentials:
    authzid: str
    authcid: str
    password: str

    def __repr__(self) -> str:
        return f"PlainCredentials(authzid={self.authzid!r}, authcid={self.authcid!r}, ...)"


def decode_plain(message: bytes) -> PlainCredentials:
    """authzid NUL authcid NUL passwd, all UTF-8; authcid and passwd non-empty (RFC 4616 §2)."""
    parts = message.split(b"\x00")
    if len(parts) != 3:
        raise PlainError("PLAIN message must have three NUL-separated fields")
    try:
        authzid, authcid, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        raise PlainError("PLAIN message is not UTF-8") from None
    if not authcid or not password:
        raise PlainError("PLAIN authcid and password must not be empty")
    return PlainCredentials(authzid, authcid, password)
