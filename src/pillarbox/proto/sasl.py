"""SASL server mechanisms as step machines: PLAIN (RFC 4616) and LOGIN
(draft-murchison-sasl-login-00).

Theory of operation: `server_mechanism(name)` returns a fresh mechanism object or None.
The protocol front-end (SMTP AUTH, IMAP AUTHENTICATE, POP3 AUTH) calls
`start(initial_response)` and then `respond(data)` with each decoded client response;
each call returns either a `Challenge` (send it, base64-encoded, and wait for the next
response) or `Credentials` (check them with the auth service). Malformed input raises
`SaslError`. Base64 and the protocol's continuation syntax belong to the protocol cores;
credential lookup belongs to `services.auth`. This module must do neither, so that the
three protocols share it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# RFC 4616 §2: authzid, authcid and passwd are each at most 255 octets of UTF-8.
_MAX_FIELD = 255


class SaslError(Exception):
    """The client's response is malformed (the exchange fails)."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send `data` to the client (empty for PLAIN without initial response)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Credentials:
    """The exchange is complete: check these. `authzid` "" means "same as authcid"."""

    authcid: str
    password: str
    authzid: str = ""


Step = Challenge | Credentials


class ServerMechanism(Protocol):
    name: str

    def start(self, initial_response: bytes | None) -> Step: ...

    def respond(self, data: bytes) -> Step: ...


def _text(data: bytes, what: str) -> str:
    if len(data) > _MAX_FIELD:
        raise SaslError(f"{what} too long")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(f"{what} is not UTF-8") from None
    if "\x00" in text:
        raise SaslError(f"{what} contains NUL")
    return text


class PlainMechanism:
    """RFC 4616 §2: message = [authzid] NUL authcid NUL passwd, in one step."""

    name = "PLAIN"

    def __init__(self) -> None:
        self._done = False

    def start(self, initial_response: bytes | None) -> Step:
        if initial_response is None:
            return Challenge(b"")  # RFC 4422 §5: empty challenge asks for the response
        return self.respond(initial_response)

    def respond(self, data: bytes) -> Step:
        if self._done:
            raise SaslError("exchange already complete")
        self._done = True
        fields = data.split(b"\x00")
        if len(fields) != 3:
            raise SaslError("PLAIN message must have three fields")
        authzid, authcid, passwd = (
            _text(fields[0], "authzid"),
            _text(fields[1], "authcid"),
            _text(fields[2], "password"),
        )
        if not authcid or not passwd:
            raise SaslError("empty authcid or password")
        return Credentials(authcid=authcid, password=passwd, authzid=authzid)


class LoginMechanism:
    """draft-murchison-sasl-login: challenge "Username:", then "Password:".

    An initial response (RFC 4954 §4 allows one) is taken as the user name.
    """

    name = "LOGIN"
    USERNAME = b"Username:"
    PASSWORD = b"Password:"

    def __init__(self) -> None:
        self._user: str | None = None
        self._done = False

    def start(self, initial_response: bytes | None) -> Step:
        if initial_response is None:
            return Challenge(self.USERNAME)
        return self.respond(initial_response)

    def respond(self, data: bytes) -> Step:
        if self._done:
            raise SaslError("exchange already complete")
        if self._user is None:
            user = _text(data, "user name")
            if not user:
                raise SaslError("empty user name")
            self._user = user
            return Challenge(self.PASSWORD)
        self._done = True
        password = _text(data, "password")
        if not password:
            raise SaslError("empty password")
        return Credentials(authcid=self._user, password=password)


_MECHANISMS: dict[str, type[PlainMechanism] | type[LoginMechanism]] = {
    "PLAIN": PlainMechanism,
    "LOGIN": LoginMechanism,
}

MECHANISMS: tuple[str, ...] = tuple(_MECHANISMS)
"""Names in the order servers should announce them."""


def server_mechanism(name: str) -> ServerMechanism | None:
    """A fresh mechanism for `name` (case-insensitive), or None if unsupported."""
    cls = _MECHANISMS.get(name.upper())
    return cls() if cls is not None else None
