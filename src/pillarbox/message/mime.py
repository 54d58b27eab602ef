"""MIME header field values: Content-Type, parameters, disposition, language, encoding.

Owns the syntax of RFC 2045 §5 (Content-Type), §6 (Content-Transfer-Encoding),
RFC 2183 (Content-Disposition), RFC 3282 (Content-Language) and RFC 2231 parameter
continuations. Values are kept as latin-1 `str` so that their original bytes come back
with `.encode("latin-1")`: IMAP sends parameters raw, so nothing here decodes charsets.
It must not raise on malformed values; it returns None and lets the caller default.
"""

from __future__ import annotations

import re
from urllib.parse import quote_from_bytes, unquote_to_bytes

from pillarbox.message.charsets import decode_bytes

Params = list[tuple[str, str]]

# RFC 2045 §5.1: token chars exclude SPACE, CTLs and tspecials.
_TOKEN = r"[^\x00-\x20()<>@,;:\\\"/\[\]?=\x7f]+"
_TYPE = re.compile(r"\s*(" + _TOKEN + r")\s*/\s*(" + _TOKEN + r")\s*")
_DISPOSITION = re.compile(r"\s*(" + _TOKEN + r")\s*")
_CTE = re.compile(r"\s*(" + _TOKEN + r")")
# RFC 2231 §3-4: name*N (continuation), name*N* / name* (charset'lang'%XX encoded).
_SECTION = re.compile(r"(.+?)\*(\d+)(\*?)\Z")


def _strip_comments(value: str) -> str:
    """Remove RFC 5322 §3.2.2 comments outside quoted strings (nesting honoured)."""
    if "(" not in value:
        return value
    out: list[str] = []
    depth = 0
    in_quote = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == "\\" and (in_quote or depth) and i + 1 < n:
            if not depth:
                out.append(value[i : i + 2])
            i += 2
            continue
        if depth:
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
        elif in_quote:
            out.append(c)
            if c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
            out.append(c)
        elif c == "(":
            depth = 1
            out.append(" ")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _parse_params(text: str) -> Params:
    """Split `; name=value; ...`, unquoting quoted-strings; lenient about junk."""
    params: Params = []
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in " \t;":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        semi = text.find(";", i)
        if eq < 0 or (0 <= semi < eq):
            # An attribute without a value: skip it (RFC 2045 requires "=").
            i = n if semi < 0 else semi + 1
            continue
        name = text[i:eq].strip().lower()
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            value = "".join(chars)
            i += 1
            semi = text.find(";", i)
            i = n if semi < 0 else semi
        else:
            semi = text.find(";", i)
            end = n if semi < 0 else semi
            value = text[i:end].strip()
            i = end
        if _TOKEN_RE.fullmatch(name):
            params.append((name, value))
    return _merge_rfc2231(params)


_TOKEN_RE = re.compile(_TOKEN)


def _merge_rfc2231(params: Params) -> Params:
    """Join RFC 2231 §3 continuations into one parameter, keeping its encoded form.

    `name*0*=utf-8''a; name*1*=%E2` becomes `name*=utf-8''a%E2` and `name*0=a; name*1=b`
    becomes `name=ab` (as Dovecot reports them), so clients that know RFC 2231 decode the
    value themselves. The first occurrence of a name wins.
    """
    if not any("*" in name for name, _ in params):
        return _first_wins(params)
    sections: dict[str, dict[int, tuple[bool, str]]] = {}
    order: list[tuple[str, str | None]] = []  # (plain name, None) or (base, "sections")
    for name, value in params:
        match = _SECTION.match(name)
        if match is None:
            order.append((name, value))
            continue
        base, number, star = match.group(1), int(match.group(2)), match.group(3) == "*"
        if base not in sections:
            sections[base] = {}
            order.append((base, None))
        sections[base].setdefault(number, (star, value))
    merged: Params = []
    for name, maybe_value in order:
        if maybe_value is not None:
            merged.append((name, maybe_value))
            continue
        parts = sections[name]
        ordered = [parts[k] for k in sorted(parts)]
        if any(star for star, _ in ordered):
            chunks = []
            for index, (star, value) in enumerate(ordered):
                if star:
                    chunks.append(value)
                else:
                    encoded = quote_from_bytes(value.encode("latin-1"), safe="")
                    chunks.append(("''" if index == 0 else "") + encoded)
            merged.append((name + "*", "".join(chunks)))
        else:
            merged.append((name, "".join(value for _, value in ordered)))
    return _first_wins(merged)


def _first_wins(params: Params) -> Params:
    seen: set[str] = set()
    out: Params = []
    for name, value in params:
        if name not in seen:
            seen.add(name)
            out.append((name, value))
    return out


def parse_content_type(raw: bytes) -> tuple[str, str, Params] | None:
    """(type, subtype, params) lower-cased, or None if the value is not `type/subtype`."""
    text = _strip_comments(raw.decode("latin-1"))
    semi = text.find(";")
    head = text if semi < 0 else text[:semi]
    match = _TYPE.fullmatch(head)
    if match is None:
        return None
    params = _parse_params(text[semi + 1 :]) if semi >= 0 else []
    return match.group(1).lower(), match.group(2).lower(), params


def parse_disposition(raw: bytes) -> tuple[str, Params] | None:
    """(disposition type lower-cased, params) per RFC 2183 §2, or None if unusable."""
    text = _strip_comments(raw.decode("latin-1"))
    semi = text.find(";")
    head = text if semi < 0 else text[:semi]
    match = _DISPOSITION.fullmatch(head)
    if match is None:
        return None
    params = _parse_params(text[semi + 1 :]) if semi >= 0 else []
    return match.group(1).lower(), params


def parse_language(raw: bytes) -> list[str]:
    """RFC 3282 §2: a comma-separated list of language tags (comments removed)."""
    text = _strip_comments(raw.decode("latin-1"))
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def parse_transfer_encoding(raw: bytes | None) -> str:
    """RFC 2045 §6.1 mechanism, lower-cased; "7bit" when absent or empty (§6.1 default)."""
    if raw is None:
        return "7bit"
    match = _CTE.match(_strip_comments(raw.decode("latin-1")))
    return "7bit" if match is None else match.group(1).lower()


def param(params: Params, name: str) -> str | None:
    """The value of parameter `name` (lower-case), or None."""
    for key, value in params:
        if key == name:
            return value
    return None


def param_text(params: Params, name: str) -> str | None:
    """The decoded value of parameter `name`: the RFC 2231 §4 extended form
    ``name*=charset'language'%xx...`` when present (continuations are already joined),
    else the plain one; None if neither is there."""
    extended = param(params, name + "*")
    if extended is not None:
        charset, quote1, rest = extended.partition("'")
        _language, quote2, encoded = rest.partition("'")
        if quote1 and quote2:
            return decode_bytes(unquote_to_bytes(encoded), charset or None)
        return decode_bytes(unquote_to_bytes(extended), None)
    return param(params, name)
