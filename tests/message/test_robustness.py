"""Any bytes parse without raising, and the recorded offsets always make sense.

Hypothesis feeds random bytes, random header/body mixes and random MIME trees with
damage (truncation, dropped delimiters, LF-only endings); the invariants are the ones
the IMAP server relies on when it serves BODY[section] from byte ranges.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pillarbox.message import parse, section_range
from pillarbox.message.imapstr import string

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEADER_NAMES = st.sampled_from(
    [
        b"From",
        b"To",
        b"Cc",
        b"Subject",
        b"Date",
        b"Content-Type",
        b"Content-Transfer-Encoding",
        b"Content-Disposition",
        b"Content-Language",
        b"Sender",
        b"Reply-To",
        b"Message-ID",
    ]
)
VALUES = st.one_of(
    st.binary(max_size=60),
    st.sampled_from(
        [
            b"multipart/mixed; boundary=b",
            b"message/rfc822",
            b"text/plain; charset=koi8-r",
            b'"a, b" <x@y>, g: c@d;',
            b"=?utf-8?b?w6k=?=",
            b"base64",
            b"quoted-printable",
            b"attachment; filename*0*=utf-8''%E2; filename*1=x",
            b"(",
            b'"',
            b"<@a:b@c>",
        ]
    ),
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    lines = [draw(HEADER_NAMES) + b":" + draw(VALUES) for _ in range(draw(st.integers(0, 8)))]
    body_lines = draw(
        st.lists(
            st.one_of(st.binary(max_size=40), st.sampled_from([b"--b", b"--b--", b"", b"--b  "])),
            max_size=12,
        )
    )
    return eol.join(lines) + eol + eol + eol.join(body_lines)


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("c", []):
        out.extend(_nodes(child))
    if "m" in node:
        out.extend(_nodes(node["m"]))
    return out


def _check(data: bytes) -> None:
    parsed = parse(data)
    assert parsed.size == len(data)
    assert parsed.envelope.startswith(b"(") and parsed.envelope.endswith(b")")
    assert parsed.bodystructure.startswith(b"(") and parsed.bodystructure.endswith(b")")
    assert parsed.bodystructure.count(b"(") >= parsed.body.count(b"(")
    root = json.loads(parsed.parts)["p"]
    assert (root["h"], root["e"]) == (0, len(data))
    for node in _nodes(root):
        assert 0 <= node["h"] <= node["b"] <= node["e"] <= len(data)
        children = node.get("c", [])
        previous_end = node["b"]
        for child in children:
            # Children lie inside their parent's body, in order, without overlapping.
            assert node["b"] <= child["h"] and child["e"] <= node["e"]
            assert child["h"] >= previous_end
            previous_end = child["e"]
        if "m" in node:
            inner = node["m"]
            assert (inner["h"], inner["e"]) == (node["b"], node["e"])
    # Header and text of the message put together are the message itself.
    header = section_range(parsed.parts, (), "HEADER")
    text = section_range(parsed.parts, (), "TEXT")
    assert header is not None and text is not None
    assert header[0] == 0 and header[1] == text[0] and text[1] == len(data)
    # Every numbered part has a MIME header right before its body.
    for number in range(1, 4):
        whole = section_range(parsed.parts, (number,), "")
        mime = section_range(parsed.parts, (number,), "MIME")
        assert (whole is None) == (mime is None)
        if whole is not None and mime is not None:
            assert mime[1] == whole[0]
    assert len(parsed.preview) <= 200
    assert "\x00" not in parsed.body_text + parsed.subject + parsed.headers


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    """Arbitrary bytes give a MessageMeta with consistent offsets."""
    _check(data)


@SETTINGS
@given(messages())
def test_random_mime_never_raises(data: bytes) -> None:
    """Header/body mixes with MIME-looking pieces keep every invariant."""
    _check(data)


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> bytes:
    kind = draw(st.sampled_from(["leaf", "multi", "message"] if depth < 4 else ["leaf"]))
    if kind == "leaf":
        return b"Content-Type: text/plain\r\n\r\n" + draw(st.binary(max_size=30))
    if kind == "message":
        return b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n" + draw(trees(depth + 1))
    boundary = b"b%d" % depth
    children = draw(st.lists(trees(depth + 1), min_size=1, max_size=3))
    body = b"".join(b"--" + boundary + b"\r\n" + child + b"\r\n" for child in children)
    if draw(st.booleans()):
        body += b"--" + boundary + b"--\r\n"
    return b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n" + body


@SETTINGS
@given(trees(), st.data())
def test_damaged_trees_never_raise(tree: bytes, data: st.DataObject) -> None:
    """Well-formed trees, truncated anywhere or with CRLF turned to LF, still parse."""
    _check(tree)
    cut = data.draw(st.integers(0, len(tree)))
    _check(tree[:cut])
    _check(tree.replace(b"\r\n", b"\n"))


@given(st.binary(max_size=100))
def test_imap_string_round_trips(value: bytes) -> None:
    """A quoted string unescapes to the value; a literal carries it byte for byte."""
    encoded = string(value)
    clean = value.replace(b"\x00", b"")
    if encoded.startswith(b"{"):
        head, _, rest = encoded.partition(b"}\r\n")
        assert int(head[1:]) == len(rest) and rest == clean
    else:
        inner = encoded[1:-1]
        assert inner.replace(b'\\"', b'"').replace(b"\\\\", b"\\") == clean


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list('ab @.,;:<>()[]"\\\t\r\né')), max_size=60))
def test_address_lists_never_hang_or_raise(value: str) -> None:
    """Stray specials (a lone ")" once looped forever) always give a finite answer."""
    from pillarbox.message.addresses import format_address_list, parse_address_list

    parse_address_list(value)
    format_address_list(value)
