"""A blocking IMAP client for fetching, on the standard library's imaplib.

imaplib is subclassed where its documentation allows (`open`, `read`, `readline`): the
connection comes from `network.connect` (address checked) and is wrapped in verified TLS
for implicit TLS; a literal larger than the bound, or a line longer than `MAX_LINE`,
ends the session instead of being read. STARTTLS (RFC 9051 §6.2.1) is refused after a
PREAUTH greeting (RFC 9051 §7.1.4: TLS could no longer protect the login, and a PREAUTH
on a STARTTLS port is the attack that skips TLS) and when the server sent anything after
its OK before the handshake.

What a fetch needs of IMAP is wrapped in plain methods: select a folder and read its
UIDVALIDITY, list UIDs above a point (UID SEARCH, RFC 9051 §6.4.4, §6.4.9), sizes and flags
(UID FETCH RFC822.SIZE FLAGS), one message or its header without setting \\Seen
(BODY.PEEK, RFC 9051 §6.4.5), and delete (UID STORE + UID EXPUNGE with UIDPLUS, RFC 4315
§2.1, else EXPUNGE). Folder names are Unicode here and modified UTF-7 on the wire (RFC
3501 §5.1.3; UTF8=ACCEPT is never enabled, so every server understands them); `folders`
lists the selectable ones with their special use (LIST, RFC 9051 §6.3.9; RETURN
(SPECIAL-USE), RFC 6154 §5.1, where offered).

Must not: fall back to plain text when TLS was asked for.
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import re
import select
import socket
import ssl
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pillarbox.fetcher.errors import (
    AuthenticationFailed,
    FetchError,
    InsecureConnection,
    RemoteProtocolFailure,
)
from pillarbox.fetcher.network import cipher_text, wrap
from pillarbox.proto.imap import mutf7

MAX_LINE = 1024 * 1024
UID_CHUNK = 500  # UIDs per FETCH of sizes and flags
CARRIED_FLAGS = frozenset({"\\Seen", "\\Flagged", "\\Answered"})

_ITEM_UID = re.compile(rb"\bUID (\d+)")
_ITEM_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_ITEM_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
# What makes a watched source worth fetching at once: new mail, or changed flags.
_CHANGE = re.compile(rb"^\* \d+ (EXISTS|FETCH)\b", re.IGNORECASE)
_IDLE_TAGS = itertools.count(1)
_CAPABILITY_CODE = re.compile(rb"^\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)
# One LIST reply after "* LIST ": (attributes) delimiter name (RFC 9051 §7.3.1); a name
# sent as a literal arrives from imaplib as the tuple's second item.
_LIST_REPLY = re.compile(rb'^\(([^)]*)\) (NIL|"(?:\\.|[^"\\])*") ?(.*)$', re.IGNORECASE)
MAX_FOLDERS = 1000  # a source with more is not mirrored past this many


@dataclass(frozen=True, slots=True)
class RemoteFolder:
    """A selectable folder of the source: Unicode name, hierarchy delimiter ("" if the
    server has none), and its RFC 6154 special use (e.g. "\\Sent") if it told one."""

    name: str
    delimiter: str
    attributes: frozenset[str]

    @property
    def special_use(self) -> str | None:
        for use in ("\\Sent", "\\Drafts", "\\Archive", "\\Junk", "\\Trash", "\\All"):
            if use.lower() in self.attributes:
                return use
        return "\\Flagged" if "\\flagged" in self.attributes else None


class _Imap(imaplib.IMAP4):
    """imaplib with a checked socket and bounded reads (see module docstring)."""

    def __init__(
        self,
        sock: socket.socket,
        host: str,
        port: int,
        *,
        implicit_tls: ssl.SSLContext | None,
        max_literal: int,
    ) -> None:
        self._given = sock
        self._implicit = implicit_tls
        self.max_literal = max_literal
        super().__init__(host, port)

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        self.host, self.port = host, port
        sock = self._given
        if self._implicit is not None:
            sock = wrap(sock, self._implicit, host)
        self.sock = sock
        self.file = sock.makefile("rb")

    def read(self, size: int) -> bytes:
        if size > self.max_literal:
            raise RemoteProtocolFailure(
                f"{self.host}: a literal of {size} octets, over the bound of {self.max_literal}"
            )
        return super().read(size)

    def readline(self) -> bytes:
        line = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise RemoteProtocolFailure(f"{self.host}: a line longer than {MAX_LINE} octets")
        if not line:
            raise imaplib.IMAP4.abort("socket error: EOF")
        assert isinstance(line, bytes)
        return line


class ImapClient:
    """One IMAP session over a connected socket (see module docstring)."""

    def __init__(
        self,
        sock: socket.socket,
        host: str,
        port: int,
        *,
        implicit_tls: ssl.SSLContext | None,
        max_literal: int,
    ) -> None:
        self.host = host
        self.highestmodseq: int | None = None
        try:
            self.imap = _Imap(sock, host, port, implicit_tls=implicit_tls, max_literal=max_literal)
        except imaplib.IMAP4.error as exc:
            sock.close()
            raise FetchError(f"{host}: the server refused the connection: {exc}") from None
        except OSError as exc:
            sock.close()
            raise FetchError(f"{host}: connection lost: {exc}") from None

    @property
    def tls(self) -> str | None:
        return cipher_text(self.imap.sock)

    def _ok(self, result: tuple[str, list[object]], what: str) -> list[object]:
        typ, data = result
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise FetchError(f"{self.host}: {what} refused: {text[:200]}")
        return data

    def starttls(self, context: ssl.SSLContext) -> None:
        imap = self.imap
        if imap.state != "NONAUTH":
            raise InsecureConnection(
                f"{self.host}: the server sent PREAUTH before STARTTLS; refused"
            )
        if "STARTTLS" not in imap.capabilities:
            raise InsecureConnection(f"{self.host}: the server does not offer STARTTLS")
        # The one private call: imaplib's own starttls() gives no moment between the OK
        # and the handshake, which is where pipelined plaintext must be looked for.
        typ, _data = imap._simple_command("STARTTLS")
        if typ != "OK":
            raise InsecureConnection(f"{self.host}: STARTTLS refused; not continuing")
        if _buffered(imap):
            raise InsecureConnection(f"{self.host}: data before the TLS handshake; refused")
        imap.sock = wrap(imap.sock, context, self.host)
        imap.file = imap.sock.makefile("rb")
        # RFC 9051 §6.2.1: capabilities said before TLS are forgotten.
        self._refresh_capabilities()

    def _refresh_capabilities(self) -> None:
        imap = self.imap
        typ, data = imap.capability()
        if typ == "OK" and data and isinstance(data[-1], bytes):
            imap.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.imap.capabilities)

    def login(self, user: str, password: str) -> None:
        if self.imap.state != "NONAUTH":
            return  # PREAUTH without STARTTLS asked for: already logged in
        try:
            if (user + password).isascii() or "AUTH=PLAIN" not in self.imap.capabilities:
                reply: list[object] = list(self.imap.login(user, password)[1])
            else:
                # LOGIN takes ASCII strings only in imaplib; SASL PLAIN carries UTF-8
                # (RFC 4616 §2) through AUTHENTICATE (RFC 9051 §6.2.2).
                token = f"\0{user}\0{password}".encode()
                done = self.imap.authenticate("PLAIN", lambda _challenge: token)
                reply = typing.cast(list[object], done[1])  # a list at run time
        except imaplib.IMAP4.abort as exc:
            raise FetchError(f"{self.host}: connection lost at login: {exc}") from None
        except imaplib.IMAP4.error as exc:
            said = exc.args[0] if exc.args else b""
            text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
            if "[UNAVAILABLE]" in text.upper():  # RFC 5530 §3: not the password's fault
                raise FetchError(f"{self.host}: login refused for now: {text[:200]}") from None
            raise AuthenticationFailed(
                f"{self.host}: authentication failed (wrong user name or password): {text[:200]}"
            ) from None
        # RFC 9051 §6.2.3: a server may offer more once logged in (IDLE, CONDSTORE), and
        # may say so in a CAPABILITY response code of its OK; else we ask.
        last = reply[-1] if reply and isinstance(reply[-1], bytes) else b""
        code = _CAPABILITY_CODE.match(last)
        if code is not None:
            self.imap.capabilities = tuple(code.group(1).decode("ascii", "replace").upper().split())
        else:
            self._refresh_capabilities()

    def select(self, folder: str, *, readonly: bool, condstore: bool = False) -> int:
        """Select `folder`; its UIDVALIDITY (RFC 9051 §7.1). With `condstore`, ask for
        mod-sequences (the CONDSTORE parameter, RFC 7162 §3.1.8) and keep the folder's
        HIGHESTMODSEQ in `highestmodseq` (None when the server has none for it: NOMODSEQ,
        RFC 7162 §3.1.2.2)."""
        self.highestmodseq = None
        name = _quoted(mutf7.encode(folder)) + (" (CONDSTORE)" if condstore else "")
        typ, data = self.imap.select(name, readonly=readonly)
        if typ != "OK":
            text = data[0].decode("utf-8", "replace") if data and data[0] else ""
            raise FetchError(f"{self.host}: no folder {folder!r} ({text[:200]})")
        typ, values = self.imap.response("UIDVALIDITY")
        if not values or values[0] is None:
            raise RemoteProtocolFailure(f"{self.host}: {folder!r} has no UIDVALIDITY")
        if condstore:
            _typ, modseq = self.imap.response("HIGHESTMODSEQ")  # RFC 7162 §3.1.2.1
            if modseq and isinstance(modseq[-1], bytes) and modseq[-1].isdigit():
                self.highestmodseq = int(modseq[-1])
        return int(values[-1])

    def folders(self) -> list[RemoteFolder]:
        """The source's selectable folders (not \\Noselect / \\NonExistent), in the
        server's order, at most `MAX_FOLDERS`; names it sends that are not valid
        modified UTF-7 are skipped."""
        command: tuple[str, ...] = ('""', '"*"')
        if "SPECIAL-USE" in self.capabilities:
            command = ('""', '"*" RETURN (SPECIAL-USE)')
        data = self._ok(typing.cast(tuple[str, list[object]], self.imap.list(*command)), "LIST")
        found: list[RemoteFolder] = []
        for item in data:
            line, literal = (item[0], item[1]) if isinstance(item, tuple) else (item, None)
            if not isinstance(line, bytes):
                continue
            match = _LIST_REPLY.match(line)
            if match is None:
                continue
            attributes = frozenset(match.group(1).decode("ascii", "replace").lower().split())
            if attributes & {"\\noselect", "\\nonexistent"}:
                continue
            raw = literal if isinstance(literal, bytes) else _unquoted(match.group(3))
            delimiter = b"" if match.group(2).upper() == b"NIL" else _unquoted(match.group(2))
            try:
                name = mutf7.decode(raw)
            except mutf7.Mutf7Error:
                continue
            found.append(RemoteFolder(name, delimiter.decode("ascii", "replace"), attributes))
            if len(found) >= MAX_FOLDERS:
                break
        return found

    def flags_changed_since(self, modseq: int, last_uid: int) -> dict[int, frozenset[str]]:
        """UID -> flags of the messages up to `last_uid` whose flags changed after
        `modseq` (UID FETCH with the CHANGEDSINCE modifier, RFC 7162 §3.1.4.1)."""
        if last_uid < 1:
            return {}
        data = self._ok(
            self.imap.uid("FETCH", f"1:{last_uid}", "(UID FLAGS)", f"(CHANGEDSINCE {modseq})"),
            "FETCH CHANGEDSINCE",
        )
        out: dict[int, frozenset[str]] = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid, flags = _ITEM_UID.search(line), _ITEM_FLAGS.search(line)
            if uid and flags:
                out[int(uid.group(1))] = frozenset(
                    flags.group(1).decode("ascii", "replace").split()
                )
        return out

    def uids_from(self, first: int) -> list[int]:
        """UIDs of the selected folder from `first` on, ascending."""
        data = self._ok(self.imap.uid("SEARCH", f"UID {first}:*"), "UID SEARCH")
        found: list[int] = []
        for item in data:
            if isinstance(item, bytes):
                found.extend(int(u) for u in item.split() if u.isdigit())
        # RFC 9051 §6.4.9: "n:*" matches the highest UID even when it is below n.
        return sorted(u for u in set(found) if u >= first)

    def sizes_and_flags(self, uids: Sequence[int]) -> dict[int, tuple[int, frozenset[str]]]:
        """UID -> (RFC822.SIZE, flags) of the given UIDs that exist."""
        out: dict[int, tuple[int, frozenset[str]]] = {}
        for start in range(0, len(uids), UID_CHUNK):
            chunk = ",".join(str(u) for u in uids[start : start + UID_CHUNK])
            data = self._ok(self.imap.uid("FETCH", chunk, "(UID RFC822.SIZE FLAGS)"), "FETCH")
            for item in data:
                line = item[0] if isinstance(item, tuple) else item
                if not isinstance(line, bytes):
                    continue
                uid, size, flags = _ITEM_UID.search(line), _ITEM_SIZE.search(line), None
                flags = _ITEM_FLAGS.search(line)
                if uid and size:
                    names = flags.group(1).decode("ascii", "replace").split() if flags else []
                    out[int(uid.group(1))] = (int(size.group(1)), frozenset(names))
        return out

    def body(self, uid: int, part: str = "") -> bytes | None:
        """BODY.PEEK[part] of one message (no \\Seen set); None if it is gone."""
        data = self._ok(self.imap.uid("FETCH", str(uid), f"(BODY.PEEK[{part}])"), "FETCH")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                match = _ITEM_UID.search(item[0])
                if match is None or int(match.group(1)) == uid:
                    return item[1]
        return None

    def delete(self, uids: Sequence[int]) -> None:
        """Mark and expunge: UID EXPUNGE (RFC 4315 §2.1) removes only these."""
        if not uids:
            return
        ids = ",".join(str(u) for u in uids)
        self._ok(self.imap.uid("STORE", ids, "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
        if "UIDPLUS" in self.imap.capabilities:
            self._ok(self.imap.uid("EXPUNGE", ids), "UID EXPUNGE")
        else:
            self._ok(self.imap.expunge(), "EXPUNGE")

    def idle(self, seconds: float, wake: socket.socket, on_change: Callable[[], object]) -> bool:
        """Wait in IDLE (RFC 2177 §3) on the selected folder for up to `seconds`, calling
        `on_change` for each EXISTS or FETCH the server sends (new mail, flags changed);
        then DONE. False if `wake` became readable (stop), True when the time is up.

        Lines are read only when the socket (or a buffer) holds data: imaplib's file
        object cannot survive a read timeout, so the wait is a select() instead."""
        imap = self.imap
        tag = b"W" + str(next(_IDLE_TAGS)).encode()
        imap.send(tag + b" IDLE\r\n")
        line = imap.readline()
        while line.startswith(b"* "):  # untagged data before the continuation
            if _CHANGE.match(line):
                on_change()
            line = imap.readline()
        if not line.startswith(b"+"):
            raise RemoteProtocolFailure(f"{self.host}: IDLE refused: {_text(line)}")
        deadline = time.monotonic() + seconds
        woken = False
        while (remaining := deadline - time.monotonic()) > 0:
            if not _buffered(imap):
                ready, _, _ = select.select([imap.sock, wake], [], [], remaining)
                if wake in ready:
                    woken = True
                    break
                if not ready:
                    break
            line = imap.readline()
            if line.startswith(b"* BYE"):
                raise FetchError(f"{self.host}: the server ended IDLE: {_text(line)}")
            if _CHANGE.match(line):
                on_change()
        imap.send(b"DONE\r\n")
        while not (line := imap.readline()).startswith(tag + b" "):
            if _CHANGE.match(line):
                on_change()
        if not line.startswith(tag + b" OK"):
            raise RemoteProtocolFailure(f"{self.host}: IDLE ended with {_text(line)}")
        return not woken

    def logout(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.imap.logout()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.imap.shutdown()


def _text(line: bytes) -> str:
    return line.decode("utf-8", "replace").strip()[:200]


def _quoted(name: str) -> str:
    """A mailbox name as an IMAP quoted string (RFC 9051 §4.3)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquoted(value: bytes) -> bytes:
    """An astring's value: a quoted string with its quoted-pairs undone, else as is."""
    value = value.strip()
    if len(value) >= 2 and value[:1] == b'"' and value[-1:] == b'"':
        return re.sub(rb"\\(.)", rb"\1", value[1:-1])
    return value


def _buffered(imap: imaplib.IMAP4) -> bool:
    """Whether the server sent bytes after its STARTTLS reply: peek at imaplib's buffer
    without blocking (a non-blocking peek returns b"" when nothing is there)."""
    file = imap.file
    peek = getattr(file, "peek", None)
    if peek is None:
        return False
    sock = imap.sock
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(timeout)
