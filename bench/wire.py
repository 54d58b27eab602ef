"""Thin, fast IMAP and POP3 clients for measuring servers, plus SMTP/LMTP helpers.

Why not imaplib/poplib: they parse every response line with Python regexes and read
multi-line POP3 replies one ``readline`` at a time. On a 100,000-line ``UID FETCH`` or ten
thousand ``RETR``s that client cost is as large as the server's, shares our two cores with
the server under test and would hide the very difference we measure. These clients read
in large chunks, only locate line ends, literals and the tagged completion, and leave any
parsing to the caller, outside the timed window.

SMTP uses :mod:`smtplib` (one DATA per message; its cost is per message, not per line).

Must not: connect anywhere but the endpoint's loopback host; block without a socket timeout.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
from dataclasses import dataclass, field

from bench.servers import Endpoint

TIMEOUT = 120.0
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_RECV = 256 * 1024


class ProtocolFailure(RuntimeError):
    """The server answered NO/BAD/-ERR, closed the connection, or is not listening."""


class NotServed(ProtocolFailure):
    """The side does not offer this protocol (no port), e.g. Pillarbox before POP3 lands."""


def imap_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class ImapReply:
    status: str
    text: bytes
    #: Untagged response lines, literals inlined (``* 3 FETCH (BODY[] {12}\r\n...)``).
    untagged: list[bytes] = field(default_factory=list)


class _Stream:
    """Buffered socket reader: lines and exact byte counts."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise ProtocolFailure(f"connect to {host}:{port}: {exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def _fill(self) -> None:
        if self.pos > 1 << 20:
            del self.buf[: self.pos]
            self.pos = 0
        chunk = self.sock.recv(_RECV)
        if not chunk:
            raise ProtocolFailure("connection closed by server")
        self.buf += chunk

    def line(self) -> bytes:
        """One line including its CRLF."""
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0:
                out = bytes(self.buf[self.pos : end + 1])
                self.pos = end + 1
                return out
            self._fill()

    def exact(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            self._fill()
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def until(self, terminator: bytes) -> int:
        """Skip bytes up to and including *terminator*; return how many were skipped."""
        total = 0
        while True:
            end = self.buf.find(terminator, self.pos)
            if end >= 0:
                stop = end + len(terminator)
                total += stop - self.pos
                self.pos = stop
                return total
            # Keep the tail: the terminator may straddle two reads.
            keep_from = max(self.pos, len(self.buf) - len(terminator) + 1)
            total += keep_from - self.pos
            del self.buf[:keep_from]
            self.pos = 0
            self._fill()

    def peek(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            self._fill()
        return bytes(self.buf[self.pos : self.pos + n])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class ImapClient:
    """One IMAP connection; commands run one at a time, in the order called."""

    def __init__(self, endpoint: Endpoint, timeout: float = TIMEOUT) -> None:
        port = endpoint.port("imap")  # the next node's, when the side has several
        if port is None:
            raise NotServed(f"{endpoint.side} serves no IMAP")
        self._io = _Stream(endpoint.host, port, timeout)
        self._tag = 0
        greeting = self._io.line()
        if not greeting.startswith(b"* OK"):
            self._io.close()
            raise ProtocolFailure(f"IMAP greeting {greeting[:100]!r}")

    def command(self, command: str, literal: bytes | None = None) -> ImapReply:
        """Send ``TAG command`` (and *literal* after the continuation); raise unless OK."""
        self._tag += 1
        tag = b"b%d" % self._tag
        io = self._io
        untagged: list[bytes] = []
        if literal is None:
            io.send(tag + b" " + command.encode() + b"\r\n")
        else:
            io.send(tag + b" " + command.encode() + b" {%d}\r\n" % len(literal))
            while True:  # untagged updates (EXISTS, FETCH) may come before the "+"
                line = io.line()
                if line.startswith(b"+"):
                    break
                if not line.startswith(b"* "):
                    verb = command.split()[0]
                    raise ProtocolFailure(f"IMAP {verb}: no continuation: {line[:200]!r}")
                untagged.append(line)
            io.send(literal + b"\r\n")
        prefix = tag + b" "
        while True:
            line = io.line()
            match = _LITERAL.search(line)
            while match is not None:
                data = io.exact(int(match.group(1)))
                rest = io.line()
                line = line + data + rest
                match = _LITERAL.search(rest)
            if line.startswith(prefix):
                status, _, text = line[len(prefix) :].partition(b" ")
                reply = ImapReply(status.decode("ascii", "replace").upper(), text, untagged)
                if reply.status != "OK":
                    words = command.split(" ", 2)
                    verb = " ".join(words[:2]) if words[0].upper() == "UID" else words[0]
                    raise ProtocolFailure(
                        f"IMAP {verb}: {reply.status} {text.decode(errors='replace')[:200]}"
                    )
                return reply
            if line.startswith(b"* BYE"):
                raise ProtocolFailure(f"IMAP server said {line[:200]!r}")
            untagged.append(line)

    def login(self, user: str, password: str) -> None:
        self.command(f"LOGIN {imap_quote(user)} {imap_quote(password)}")

    def select(self, mailbox: str = "INBOX") -> int:
        """SELECT *mailbox*; return its EXISTS count."""
        reply = self.command(f"SELECT {imap_quote(mailbox)}")
        for line in reply.untagged:
            parts = line.split()
            if len(parts) >= 3 and parts[2].upper() == b"EXISTS":
                return int(parts[1])
        raise ProtocolFailure("SELECT without EXISTS")

    def status_messages(self, mailbox: str = "INBOX") -> int:
        reply = self.command(f"STATUS {imap_quote(mailbox)} (MESSAGES)")
        for line in reply.untagged:
            match = re.search(rb"MESSAGES (\d+)", line, re.IGNORECASE)
            if line.startswith(b"* STATUS") and match:
                return int(match.group(1))
        raise ProtocolFailure("STATUS without MESSAGES")

    def create(self, mailbox: str) -> None:
        """CREATE, treating "already exists" as success."""
        try:
            self.command(f"CREATE {imap_quote(mailbox)}")
        except ProtocolFailure as exc:
            if "exist" not in str(exc).lower():
                raise

    def append(self, mailbox: str, message: bytes, flags: str = "") -> None:
        flag_part = f" ({flags})" if flags else ""
        self.command(f"APPEND {imap_quote(mailbox)}{flag_part}", literal=message)

    def logout(self) -> None:
        with contextlib.suppress(OSError):
            self._io.send(b"z LOGOUT\r\n")
        self._io.close()


def imap_login(endpoint: Endpoint, user: str) -> ImapClient:
    client = ImapClient(endpoint)
    try:
        client.login(user, endpoint.password)
    except BaseException:
        client.logout()
        raise
    return client


def parse_search(reply: ImapReply) -> list[int]:
    numbers: list[int] = []
    for line in reply.untagged:
        if line[:9].upper() == b"* SEARCH " or line.rstrip().upper() == b"* SEARCH":
            numbers.extend(int(x) for x in line.split()[2:])
    return numbers


_UID_FLAGS = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)", re.IGNORECASE)


def parse_uid_flags(reply: ImapReply) -> list[tuple[int, bytes]]:
    """``[(uid, flags)]`` from FETCH responses carrying UID and FLAGS."""
    out: list[tuple[int, bytes]] = []
    for line in reply.untagged:
        uid = -1
        flags = b""
        for match in _UID_FLAGS.finditer(line):
            if match.group(1) is not None:
                uid = int(match.group(1))
            else:
                flags = match.group(2)
        if uid >= 0:
            out.append((uid, flags))
    return out


def uid_set(uids: list[int]) -> str:
    """Compress sorted UIDs to an IMAP sequence set: ``1:5,9,11:12``."""
    parts: list[str] = []
    ordered = sorted(uids)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(parts)


class Pop3Client:
    """One POP3 session: USER/PASS, STAT, UIDL, RETR, QUIT."""

    def __init__(self, endpoint: Endpoint, timeout: float = TIMEOUT) -> None:
        port = endpoint.port("pop3")
        if port is None:
            raise NotServed(f"{endpoint.side} serves no POP3")
        self._io = _Stream(endpoint.host, port, timeout)
        self._expect_ok("greeting")

    def _expect_ok(self, what: str) -> bytes:
        line = self._io.line()
        if not line.startswith(b"+OK"):
            raise ProtocolFailure(f"POP3 {what}: {line[:200]!r}")
        return line

    def _multiline(self) -> int:
        if self._io.peek(3) == b".\r\n":
            self._io.exact(3)
            return 0
        return self._io.until(b"\r\n.\r\n")

    def login(self, user: str, password: str) -> None:
        self._io.send(f"USER {user}\r\n".encode())
        self._expect_ok("USER")
        self._io.send(f"PASS {password}\r\n".encode())
        self._expect_ok("PASS")

    def stat(self) -> int:
        self._io.send(b"STAT\r\n")
        return int(self._expect_ok("STAT").split()[1])

    def uidl(self) -> None:
        self._io.send(b"UIDL\r\n")
        self._expect_ok("UIDL")
        self._multiline()

    def retr(self, number: int) -> int:
        """RETR *number*; return the size on the wire of the (dot-stuffed) message."""
        self._io.send(b"RETR %d\r\n" % number)
        self._expect_ok("RETR")
        return self._multiline()

    def quit(self) -> None:
        try:
            self._io.send(b"QUIT\r\n")
            self._expect_ok("QUIT")
        finally:
            self._io.close()

    def close(self) -> None:
        self._io.close()


def smtp_connect(endpoint: Endpoint, timeout: float = TIMEOUT) -> smtplib.SMTP:
    port = endpoint.port("smtp")
    if port is None:
        raise NotServed(f"{endpoint.side} serves no SMTP")
    try:
        client = smtplib.SMTP(endpoint.host, port, timeout=timeout)
        client.ehlo("bench-client.example.invalid")
    except (OSError, smtplib.SMTPException) as exc:
        raise ProtocolFailure(f"SMTP connect: {exc}") from exc
    return client


def lmtp_connect(endpoint: Endpoint, timeout: float = TIMEOUT) -> smtplib.LMTP:
    if endpoint.lmtp_port is None:
        raise NotServed(f"{endpoint.side} serves no LMTP")
    try:
        client = smtplib.LMTP(endpoint.host, endpoint.lmtp_port, timeout=timeout)
        client.ehlo("bench-client.example.invalid")
    except (OSError, smtplib.SMTPException) as exc:
        raise ProtocolFailure(f"LMTP connect: {exc}") from exc
    return client


def send_message(client: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """One SMTP/LMTP transaction; raise :class:`ProtocolFailure` unless it was accepted."""
    try:
        refused = client.sendmail(sender, [recipient], message)
    except smtplib.SMTPException as exc:
        raise ProtocolFailure(f"SMTP: {exc}") from exc
    if refused:
        raise ProtocolFailure(f"SMTP refused {refused}")


class PipelinedSender:
    """SMTP or LMTP client that sends each transaction in two writes (RFC 2920).

    ``MAIL``, ``RCPT`` and ``DATA`` go out together and the content with its final dot
    in a second write, so a delivery costs two round trips instead of smtplib's four.
    Used to fill large folders, where round trips rather than the servers' work would
    otherwise set the pace; both sides advertise PIPELINING (Pillarbox on SMTP, Dovecot
    on LMTP), so both get the same client.
    """

    def __init__(self, host: str, port: int, lmtp: bool, timeout: float = TIMEOUT) -> None:
        self._stream = _Stream(host, port, timeout)
        self._protocol = "LMTP" if lmtp else "SMTP"
        try:
            self._expect(b"220", "greeting")
            hello = "LHLO" if lmtp else "EHLO"
            self._stream.send(f"{hello} bench-client.example.invalid\r\n".encode())
            lines = self._reply(hello)
            if not any(line[4:].upper().startswith(b"PIPELINING") for line in lines):
                raise ProtocolFailure(f"{self._protocol} server does not offer PIPELINING")
        except BaseException:
            self._stream.close()
            raise

    def _reply(self, what: str) -> list[bytes]:
        """One (possibly multi-line) reply's lines; ProtocolFailure unless 2xx/3xx."""
        lines = []
        while True:
            line = self._stream.line()
            lines.append(line)
            if line[3:4] != b"-":
                break
        if lines[-1][:1] not in (b"2", b"3"):
            reply = lines[-1].decode(errors="replace").strip()
            raise ProtocolFailure(f"{self._protocol} {what}: {reply}")
        return lines

    def _expect(self, code: bytes, what: str) -> None:
        last = self._reply(what)[-1]
        if not last.startswith(code):
            reply = last.decode(errors="replace").strip()
            raise ProtocolFailure(f"{self._protocol} {what}: {reply}")

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Deliver *message* (CRLF lines) to one recipient; raise unless accepted."""
        self._stream.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode())
        self._expect(b"250", "MAIL")
        self._expect(b"250", "RCPT")
        self._expect(b"354", "DATA")
        body = message if not message.startswith(b".") else b"." + message
        body = body.replace(b"\r\n.", b"\r\n..")
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self._stream.send(body + b".\r\n")
        self._expect(b"250", "end of data")  # LMTP: one reply per recipient, here one

    def close(self) -> None:
        with contextlib.suppress(OSError, ProtocolFailure):
            self._stream.send(b"QUIT\r\n")
            self._stream.line()
        self._stream.close()


def pipelined_sender(endpoint: Endpoint, lmtp: bool) -> PipelinedSender:
    port = endpoint.lmtp_port if lmtp else endpoint.port("smtp")
    if port is None:
        raise NotServed(f"{endpoint.side} serves no {'LMTP' if lmtp else 'SMTP'}")
    return PipelinedSender(endpoint.host, port, lmtp)
