"""A blocking POP3 client (RFC 1939) with STLS (RFC 2595 §4) and the response codes
of RFC 2449 §8 / RFC 3206, for fetching: log in, list with UIDL, retrieve, delete, quit.

Bounds: a reply line is at most `MAX_LINE` octets, a message (and so any line of it) at
most the size the caller gives (the client stops reading and drops the connection past
it), so a hostile server can neither exhaust memory nor keep us reading forever (every
read has the socket's timeout). After STLS the server's pipelined plaintext, if any, is
refused rather than read as if protected (the STARTTLS command-injection class; RFC 2595
§4 has the client discard what it learnt before TLS). CAPA is not used: USER/PASS, UIDL
and TOP are tried and their -ERR handled.

Must not: fall back to plain text when TLS was asked for, or send the password before
TLS when TLS was asked for.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

from pillarbox.fetcher.errors import (
    AuthenticationFailed,
    FetchError,
    InsecureConnection,
    RemoteProtocolFailure,
)
from pillarbox.fetcher.network import cipher_text, wrap

MAX_LINE = 64 * 1024  # RFC 1939 §3 allows 512 octets for replies; message lines run longer
# RFC 2449 §8 / RFC 3206: a -ERR to PASS with these codes is not a wrong password.
NOT_AUTH_CODES = (b"[SYS/TEMP]", b"[SYS/PERM]", b"[IN-USE]", b"[LOGIN-DELAY]")


class Pop3Client:
    """One POP3 session over a connected socket (see module docstring)."""

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock: socket.socket = sock
        self.host = host
        self._buffer = bytearray()

    # --- transport -----------------------------------------------------------------------
    def _line(self, limit: int = MAX_LINE) -> bytes:
        """One line without its CRLF."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                if end + 1 > limit:
                    raise RemoteProtocolFailure(f"{self.host}: a line longer than {limit} octets")
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line.removesuffix(b"\r")
            if len(self._buffer) > limit:
                raise RemoteProtocolFailure(f"{self.host}: a line longer than {limit} octets")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise FetchError(f"{self.host}: no answer (timed out)") from None
            except OSError as exc:
                raise FetchError(f"{self.host}: connection lost: {exc}") from None
            if not chunk:
                raise FetchError(f"{self.host}: the server closed the connection")
            self._buffer += chunk

    def _send(self, command: str) -> None:
        try:
            self.sock.sendall(command.encode("utf-8") + b"\r\n")
        except OSError as exc:
            raise FetchError(f"{self.host}: connection lost: {exc}") from None

    def _reply(self) -> tuple[bool, bytes]:
        line = self._line(MAX_LINE)
        if line.startswith(b"+OK"):
            return True, line[3:].strip()
        if line.startswith(b"-ERR"):
            return False, line[4:].strip()
        raise RemoteProtocolFailure(f"{self.host}: not a POP3 reply: {line[:80]!r}")

    def _command(self, command: str, what: str) -> bytes:
        self._send(command)
        ok, text = self._reply()
        if not ok:
            raise FetchError(f"{self.host}: {what} refused: {_shown(text)}")
        return text

    def _multiline(self, max_bytes: int) -> bytes:
        """The body of a multi-line reply, dot-unstuffed (RFC 1939 §3), CRLF line ends.
        A line may be as long as the whole bound (messages with 100 KB lines exist, and a
        message that can never be read would stop every later one); memory stays bounded
        by `max_bytes` all the same."""
        out = bytearray()
        while True:
            line = self._line(max(MAX_LINE, max_bytes - len(out) + 2))
            if line == b".":
                return bytes(out)
            if line.startswith(b"."):
                line = line[1:]
            out += line + b"\r\n"
            if len(out) > max_bytes:
                raise RemoteProtocolFailure(f"{self.host}: a reply larger than {max_bytes} octets")

    # --- session -------------------------------------------------------------------------
    def greeting(self) -> None:
        ok, text = self._reply()
        if not ok:
            raise FetchError(f"{self.host}: the server refused the connection: {_shown(text)}")

    def starttls(self, context: ssl.SSLContext) -> None:
        """RFC 2595 §4: STLS, then the handshake; anything the server sent after its +OK
        and before the handshake is an attack (or a broken server): refused."""
        self._send("STLS")
        ok, text = self._reply()
        if not ok:
            raise InsecureConnection(f"{self.host}: STLS refused ({_shown(text)}); not continuing")
        if self._buffer:
            raise InsecureConnection(f"{self.host}: data before the TLS handshake; refused")
        self.sock = wrap(self.sock, context, self.host)

    @property
    def tls(self) -> str | None:
        return cipher_text(self.sock)

    def login(self, user: str, password: str) -> None:
        """USER/PASS (RFC 1939 §7). A -ERR to either is a wrong name or password unless
        its response code says otherwise (RFC 2449 §8, RFC 3206)."""
        for command, value in (("USER", user), ("PASS", password)):
            self._send(f"{command} {value}")
            ok, text = self._reply()
            if not ok:
                if text.upper().startswith(NOT_AUTH_CODES):
                    raise FetchError(f"{self.host}: login refused for now: {_shown(text)}")
                raise AuthenticationFailed(
                    f"{self.host}: authentication failed (wrong user name or password):"
                    f" {_shown(text)}"
                )

    def uidl(self) -> dict[int, str] | None:
        """Message number -> unique id (RFC 1939 §7); None if the server has no UIDL."""
        self._send("UIDL")
        ok, _ = self._reply()
        if not ok:
            return None
        ids: dict[int, str] = {}
        for line in self._multiline(64 * 1024 * 1024).splitlines():
            number, _, uid = line.decode("ascii", "replace").partition(" ")
            if number.isdigit() and uid.strip():
                ids[int(number)] = uid.strip()
        return ids

    def sizes(self) -> dict[int, int]:
        """Message number -> size in octets (LIST, RFC 1939 §5)."""
        self._command("LIST", "LIST")
        sizes: dict[int, int] = {}
        for line in self._multiline(64 * 1024 * 1024).splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
                sizes[int(fields[0])] = int(fields[1])
        return sizes

    def headers(self, number: int, max_bytes: int) -> bytes:
        """The header block: TOP n 0 (RFC 1939 §7), or the whole message without TOP."""
        self._send(f"TOP {number} 0")
        ok, _ = self._reply()
        if ok:
            return self._multiline(max_bytes)
        return self.retrieve(number, max_bytes)

    def retrieve(self, number: int, max_bytes: int) -> bytes:
        self._command(f"RETR {number}", f"RETR {number}")
        # LIST sizes count CRLF line ends; allow a little slack for servers that lie.
        return self._multiline(max_bytes + max_bytes // 16 + 1024)

    def delete(self, number: int) -> None:
        self._command(f"DELE {number}", f"DELE {number}")

    def quit(self) -> None:
        """Ends the session; deletions take effect only on this +OK (RFC 1939 §6)."""
        self._command("QUIT", "QUIT (deletions not done)")
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _shown(text: bytes) -> str:
    """A server's text, printable and short, for `fetch list`."""
    return "".join(c if c.isprintable() else "?" for c in text.decode("utf-8", "replace"))[:200]
