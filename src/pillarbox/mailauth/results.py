"""The Authentication-Results header field (RFC 8601): writing ours, finding forged ones.

`authentication_results` writes the field for our host name (the authserv-id) with one
result per method: spf (with smtp.mailfrom or smtp.helo), one dkim per signature (header.d,
header.s, header.a; dkim=none for an unsigned message) and dmarc (header.from).

`own_results_spans` finds fields already in a message that claim to come from us; RFC 8601
§5 requires a border MTA to remove (or rename) them before adding its own, or a sender
could forge our verdict. Fields of other authserv-ids are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pillarbox.mailauth.dkim import DkimResult
from pillarbox.mailauth.dmarc import DmarcResult
from pillarbox.mailauth.spf import SpfResult
from pillarbox.message.headers import scan_header

FIELD_NAME = b"Authentication-Results"
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # RFC 2045 token characters
_DOT_ATOM_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
MAX_REASON = 120


def _value(text: str) -> str:
    """A token, or a quoted-string for anything else (RFC 8601 §2.2 `value`)."""
    if _TOKEN.fullmatch(text):
        return text
    clean = "".join(c if " " <= c <= "~" else "?" for c in text[:MAX_REASON])
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _domain(text: str) -> str:
    return _value(text.rstrip(".").lower() or "unknown")


def _spf(spf: SpfResult) -> str:
    if spf.identity == "helo":
        prop = f"smtp.helo={_domain(spf.domain)}"
    else:
        local, _, domain = spf.sender.rpartition("@")
        if local and _DOT_ATOM_LOCAL.fullmatch(local) and _TOKEN.fullmatch(domain):
            prop = f"smtp.mailfrom={local}@{domain.lower()}"  # RFC 8601 §2.2 pvalue
        else:
            prop = f"smtp.mailfrom={_domain(spf.domain)}"
    return f"spf={spf.result} {prop}"


def _dkim(result: DkimResult) -> str:
    parts = [f"dkim={result.result}"]
    if result.reason:
        parts.append(f"reason={_value(result.reason)}")
    parts.append(f"header.d={_domain(result.domain)}")
    if result.selector:
        parts.append(f"header.s={_value(result.selector)}")
    if result.algorithm:
        parts.append(f"header.a={_value(result.algorithm)}")
    return " ".join(parts)


def _dmarc(dmarc: DmarcResult) -> str:
    text = f"dmarc={dmarc.result}"
    if dmarc.result == "fail":
        text += f" reason={_value(f'p={dmarc.policy} action={dmarc.action}')}"
    if dmarc.from_domain:
        text += f" header.from={_domain(dmarc.from_domain)}"
    return text


def authentication_results(
    hostname: str, spf: SpfResult, dkim: Sequence[DkimResult], dmarc: DmarcResult
) -> bytes:
    """The complete field, folded one result per line and ending in CRLF (RFC 8601 §2.2)."""
    results = [_spf(spf)]
    results += [_dkim(r) for r in dkim] or ["dkim=none"]
    results.append(_dmarc(dmarc))
    text = f"{FIELD_NAME.decode()}: {_value(hostname.rstrip('.').lower())};\r\n\t"
    text += ";\r\n\t".join(results) + "\r\n"
    return text.encode("ascii")


def _skip_cfws(text: bytes, pos: int) -> int:
    """Past folding white space and (nested) comments (RFC 5322 §3.2.2)."""
    depth = 0
    while pos < len(text):
        char = text[pos : pos + 1]
        if depth and char == b"\\":
            pos += 2
            continue
        if char == b"(":
            depth += 1
        elif char == b")" and depth:
            depth -= 1
        elif not depth and char not in (b" ", b"\t", b"\r", b"\n"):
            break
        pos += 1
    return pos


def _quoted_string(value: bytes, pos: int) -> bytes:
    """The content of the quoted-string opening at `pos`, quoted-pairs undone (RFC 5322
    §3.2.4). Scanned pair by pair: a closing quote after an escaped backslash (``"a\\\\"``)
    ends the string, which a look-behind for one backslash gets wrong."""
    out = bytearray()
    pos += 1
    while pos < len(value):
        char = value[pos]
        if char == 0x5C and pos + 1 < len(value):  # quoted-pair
            out.append(value[pos + 1])
            pos += 2
            continue
        if char == 0x22:
            break
        out.append(char)
        pos += 1
    return bytes(out)


def authserv_id(value: bytes) -> str:
    """The authserv-id of an Authentication-Results field value (RFC 8601 §2.2)."""
    pos = _skip_cfws(value, 0)
    if value[pos : pos + 1] == b'"':
        raw = _quoted_string(value, pos)
    else:
        match = re.match(rb"[^\s;()]*", value[pos:])
        raw = match.group(0) if match else b""
    return raw.decode("ascii", "replace").rstrip(".").lower()


def own_results_spans(header: bytes, hostname: str) -> list[tuple[int, int]]:
    """(start, end) byte spans of the Authentication-Results fields in `header` (a header
    block or a whole message) whose authserv-id is `hostname`, in order (RFC 8601 §5)."""
    ours = hostname.rstrip(".").lower()
    fields, _ = scan_header(header)
    return [
        (f.start, f.end)
        for f in fields
        if f.name == "authentication-results" and authserv_id(f.value) == ours
    ]


def remove_own_results(message: bytes, hostname: str) -> bytes:
    """`message` without the Authentication-Results fields that claim to be ours."""
    spans = own_results_spans(message, hostname)
    if not spans:
        return message
    parts, pos = [], 0
    for start, end in spans:
        parts.append(message[pos:start])
        pos = end
    parts.append(message[pos:])
    return b"".join(parts)


# --- reading the field (RFC 8601 §2.2) --------------------------------------------------

_PROPSPEC = re.compile(
    r'([A-Za-z0-9_.-]+)\s*(?:/\s*[0-9]+\s*)?=\s*("(?:[^"\\]|\\.)*"|[^\s;"]*)', re.DOTALL
)


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One resinfo: ``method=result`` and its properties (``header.d=...``), lower-case
    except property values, which keep their case (a local-part may need it)."""

    method: str
    result: str
    properties: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str:
        """The first value of property `name` ("header.d"), "" when it is absent."""
        return next((v for k, v in self.properties if k == name), "")


@dataclass(frozen=True, slots=True)
class ParsedResults:
    authserv_id: str
    results: tuple[MethodResult, ...]


def _without_comments(text: str) -> str:
    """`text` with its (nested) comments replaced by a space, quoted-strings kept
    (RFC 5322 §3.2.2, §3.2.4): a comment may hold ``;`` or ``=``."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
            if not depth:
                out.append(char)
            continue
        if char == "\\" and (depth or quoted):
            escaped = True
            if not depth:
                out.append(char)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if not depth:
                out.append(" ")
        elif not depth:
            quoted = char == '"'
            out.append(char)
    return "".join(out)


def _split_resinfo(text: str) -> list[str]:
    """`text` split at each ``;`` outside a quoted-string."""
    parts: list[str] = []
    current: list[str] = []
    quoted, escaped = False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_results(value: bytes) -> ParsedResults:
    """An Authentication-Results field value (folded or not) read leniently: the
    authserv-id and each ``method=result`` with its ``ptype.property=value`` pairs; a
    resinfo that does not start with ``method=result`` is skipped, and ``none`` (no
    result, RFC 8601 §2.2) gives no results."""
    text = _without_comments(value.decode("utf-8", "replace").replace("\r\n", ""))
    first, *rest = _split_resinfo(text)
    found: list[MethodResult] = []
    for resinfo in rest:
        pairs = [(k.lower(), _unquoted(v)) for k, v in _PROPSPEC.findall(resinfo)]
        if not pairs or "." in pairs[0][0]:
            continue
        (method, result), props = pairs[0], pairs[1:]
        # reason= is a reasonspec (§2.2), not a property; kept with them under its name.
        found.append(MethodResult(method, result.lower(), tuple(props)))
    return ParsedResults(authserv_id(first.encode("utf-8", "replace")), tuple(found))


def own_results(header: bytes, hostname: str, *, above: str | None = None) -> list[ParsedResults]:
    """The parsed Authentication-Results fields of `header` (a header block or a whole
    message) that name `hostname` as their authserv-id, topmost (the newest) first; with
    `above` ("received"), only those before the first field of that name. Fields of
    other authserv-ids are not to be trusted (RFC 8601 §5) and not returned."""
    ours = hostname.rstrip(".").lower()
    fields, _ = scan_header(header)
    found: list[ParsedResults] = []
    for field in fields:
        if field.name == above:
            break
        if field.name == "authentication-results":
            parsed = parse_results(field.value)
            if parsed.authserv_id == ours:
                found.append(parsed)
    return found
