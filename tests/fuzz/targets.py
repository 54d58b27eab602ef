"""Fuzz targets: one function per parser that reads the network or a message.

Each target takes any bytes and must return normally. The oracle is the target itself:
an exception other than the ones the code documents (RemoteProtocolError from the
protocol cores, SaslError, Mutf7Error, UnknownTransferEncoding) is a crash, and so is a
failed assertion about the result (a well-formed error reply, a canonical name, output
that grows at most linearly with the input). `tests/fuzz/run.py` adds the clock (> 1 s
per input is a hang) and the memory limit, and drives the targets with Atheris; the plain
pytest regression tests call them directly.

The protocol targets use the first two bytes as the seed of their choices (limits, state,
how the input is cut into chunks, how the "server" answers), so one input always replays
the same way and the fuzzer can mutate the choices as well as the bytes.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable, Iterator

from pillarbox.mailauth import dkim, dmarc, results
from pillarbox.message import (
    UnknownTransferEncoding,
    addresses,
    decode_transfer,
    header_fields,
    parse,
    parse_address_list,
    part_encoding,
    section_range,
)
from pillarbox.message.addresses import format_address_list
from pillarbox.message.base_subject import base_subject
from pillarbox.message.encoded_words import decode_header_value
from pillarbox.message.envelope_fields import read_envelope
from pillarbox.message.headers import get_header, header_end, unfold
from pillarbox.message.message_ids import message_ids
from pillarbox.message.mime import parse_content_type, parse_disposition, parse_language
from pillarbox.proto import sasl
from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import mutf7
from pillarbox.proto.pop3 import NEED_DATA, Limits, ServerConnection, State
from pillarbox.proto.pop3 import events as pop3_ev
from pillarbox.rules import addresses as rule_addresses
from pillarbox.rules import mailbox_names
from pillarbox.server.imap import names

from . import test_imap_fuzz, test_smtp_fuzz

Target = Callable[[bytes], None]


def _split(data: bytes) -> tuple[random.Random, bytes]:
    return random.Random(data[:2]), data[2:]


def imap(data: bytes) -> None:
    """IMAP server core (RFC 9051 §2.2, literals §4.3): commands fed in chunks."""
    rng, payload = _split(data)
    test_imap_fuzz.run_case(rng, payload)


def smtp(data: bytes) -> None:
    """SMTP server core: commands, DATA dot-stuffing (RFC 5321 §4.5.2), BDAT (RFC 3030)."""
    rng, payload = _split(data)
    test_smtp_fuzz.run_one(rng, payload)


_POP3_EVENTS = tuple(
    v
    for k, v in vars(pop3_ev).items()
    if isinstance(v, type) and v.__module__ == pop3_ev.__name__ and not k.startswith("_")
)


def _pop3_drive(conn: ServerConnection, rng: random.Random) -> bool:
    """Handle events until the core needs data; False once the connection is over."""
    for _ in range(10_000):
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            assert exc.reply_hint.startswith(b"-ERR ") and exc.reply_hint.endswith(b"\r\n")
            assert exc.reply_hint.count(b"\n") == 1 and len(exc.reply_hint) <= 512
            if exc.fatal:
                return False
            continue
        if event is NEED_DATA:
            return True
        assert isinstance(event, _POP3_EVENTS), event
        if isinstance(event, pop3_ev.ConnectionClosed):
            return False
        if isinstance(event, pop3_ev.Pass | pop3_ev.AuthResponse) and rng.random() < 0.6:
            if conn.state is State.AUTHORIZATION:
                conn.authenticated()
        elif isinstance(event, pop3_ev.Auth) and rng.random() < 0.5:
            conn.auth_challenge(b"")
        elif isinstance(event, pop3_ev.Stls):
            conn.tls_started()
    raise AssertionError("next_event never returned NEED_DATA")


def pop3(data: bytes) -> None:
    """POP3 server core (RFC 1939, AUTH RFC 5034, STLS RFC 2595): commands in chunks."""
    rng, payload = _split(data)
    conn = ServerConnection(
        Limits(max_line_length=rng.choice([16, 64, 512])),
        stls_available=rng.random() < 0.5,
    )
    pos = 0
    while pos < len(payload):
        step = rng.randint(1, 40)
        conn.receive_data(payload[pos : pos + step])
        pos += step
        if not _pop3_drive(conn, rng):
            return
    conn.receive_data(b"")
    assert not _pop3_drive(conn, rng), "EOF must end the session"


def sasl_exchange(data: bytes) -> None:
    """SASL PLAIN (RFC 4616 §2) and LOGIN: decoded client responses, split at LF."""
    if not data:
        return
    mech = sasl.server_mechanism(sasl.MECHANISMS[data[0] % len(sasl.MECHANISMS)])
    assert mech is not None
    responses = data[1:].split(b"\n")
    initial: bytes | None = responses.pop(0) if data[0] & 0x80 else None
    try:
        step = mech.start(initial)
        for response in responses:
            if isinstance(step, sasl.Credentials):
                break
            step = mech.respond(response)
    except sasl.SaslError:
        return
    if isinstance(step, sasl.Credentials):
        for text in (step.authcid, step.password, step.authzid):
            # RFC 4616 §2: each field is 1*255 octets of UTF-8 without NUL.
            assert "\x00" not in text and len(text.encode()) <= 255
        assert step.authcid and step.password


def _paths(node: dict[str, object], prefix: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    yield prefix
    children = node.get("c")
    if isinstance(children, list):
        for i, child in enumerate(children[:20], 1):
            yield from _paths(child, (*prefix, i))
    inner = node.get("m")
    if isinstance(inner, dict):
        yield from _paths(inner, prefix)


_ATOM_END = frozenset(b' ()\r\n"{')


def _sexp_end(data: bytes, pos: int) -> int:
    """End of one IMAP body item at `pos` (RFC 9051 §9: "(" items ")", quoted string,
    literal, NIL or number); raises AssertionError where the grammar is broken."""
    stack = 0
    while True:
        ch = data[pos : pos + 1]
        assert ch, "BODYSTRUCTURE ends inside an item"
        if ch == b"(":
            stack += 1
            pos += 1
            continue
        if ch == b")":
            assert stack, "unbalanced )"
            stack -= 1
            pos += 1
        elif ch == b'"':
            pos += 1
            while data[pos : pos + 1] != b'"':
                assert data[pos : pos + 1] not in (b"", b"\r", b"\n"), "broken quoted string"
                pos += 2 if data[pos : pos + 1] == b"\\" else 1
            pos += 1
        elif ch == b"{":
            close = data.index(b"}\r\n", pos)
            pos = close + 3 + int(data[pos + 1 : close])
        else:
            start = pos
            while pos < len(data) and data[pos] not in _ATOM_END:
                pos += 1
            atom = data[start:pos]
            assert atom == b"NIL" or atom.isdigit(), f"bad atom {atom!r}"
        if not stack:
            return pos
        if data[pos : pos + 1] == b" ":
            pos += 1
        else:
            # The parts of a multipart follow each other with no space (1*body).
            after_list = data[pos - 1 : pos] == b")"
            assert data[pos : pos + 1] == b")" or (after_list and data[pos : pos + 1] == b"("), (
                "items not separated by one space"
            )


def message(data: bytes) -> None:
    """RFC 5322/MIME parse, then every BODY[part.kind] and BINARY[part] the result serves."""
    meta = parse(data)
    # ENVELOPE is our own output: it must read back (RFC 9051 §7.5.2 grammar).
    read_envelope(meta.envelope)
    produced = len(meta.bodystructure) + len(meta.body) + len(meta.parts) + len(meta.envelope)
    assert produced <= 200 * len(data) + 64 * 1024, "output out of proportion to the input"
    for body in (meta.bodystructure, meta.body):
        assert _sexp_end(body, 0) == len(body), body[:200]
    tree = json.loads(meta.parts)["p"]
    for n, path in enumerate(_paths(tree, ())):
        if n >= 20:
            break
        for kind in ("", "MIME", "HEADER", "TEXT"):
            rng = section_range(meta.parts, path, kind)
            if rng is not None:
                start, end = rng
                assert 0 <= start <= end <= len(data), (path, kind, rng)
        cte = part_encoding(meta.parts, path)
        body = section_range(meta.parts, path, "")
        if cte is not None and body is not None:
            with contextlib.suppress(UnknownTransferEncoding):
                decode_transfer(data[body[0] : body[1]], cte)
    end = header_end(data)
    header_fields(data[:end], ["From", "Subject"], exclude=False)
    header_fields(data[:end], ["Received"], exclude=True)


def headers(data: bytes) -> None:
    """Header field values: addresses (RFC 5322 §3.4), encoded words (RFC 2047),
    Content-Type/-Disposition/-Language parameters (RFC 2045, 2183, 2231), msg-ids."""
    text = data.decode("latin-1")
    for addr in parse_address_list(text):
        assert addr.mailbox is None or isinstance(addr.mailbox, str)
    format_address_list(text)
    addresses(data)
    decoded = decode_header_value(unfold(data))
    base_subject(decoded)
    message_ids(text)
    parse_content_type(data)
    parse_disposition(data)
    parse_language(data)
    get_header(data, "subject")


def mailbox_name(data: bytes) -> None:
    """Modified UTF-7 (RFC 3501 §5.1.3): a name that decodes has exactly one spelling,
    and every Unicode name survives encode then decode."""
    try:
        name = mutf7.decode(data)
    except mutf7.Mutf7Error:
        pass
    else:
        assert mutf7.encode(name) == data.decode("ascii"), "a second spelling decoded"
    text = data.decode("utf-8", "replace")
    assert mutf7.decode(mutf7.encode(text)) == text


def list_pattern(data: bytes) -> None:
    """LIST reference, pattern and a mailbox name (RFC 9051 §6.3.9), NUL-separated, the
    pattern as an IMAP4rev1 client sends it (modified UTF-7, RFC 3501 §5.1.3)."""
    reference, _, rest = data.partition(b"\x00")
    pattern, _, name = rest.partition(b"\x00")
    wire = pattern.decode("utf-8", "replace")
    store_pattern = names.pattern_from_wire(wire, utf8=False)
    matcher = names.list_pattern(reference.decode("utf-8", "replace"), store_pattern)
    text = name.decode("utf-8", "replace")
    for candidate in (text, text * 8, "INBOX/" + text):
        matcher.match(candidate)
    if "*" not in store_pattern and "%" not in store_pattern and not reference:
        # Without wildcards a pattern names exactly one mailbox (INBOX in any case).
        head = text[:5]
        expect = text == store_pattern or (
            store_pattern[:5].upper() == "INBOX"
            and head.isascii()
            and head.upper() == "INBOX"
            and text[5:] == store_pattern[5:]
        )
        assert matcher.match(text) == expect, (store_pattern, text)


def rules(data: bytes) -> None:
    """The normalisers every front-end runs on a client's address (RCPT, LOGIN, USER:
    IDNA 2008 + UTS #46, RFC 5321 §4.1.2, RFC 6531) and mailbox name (CREATE, RENAME):
    a canonical form must be one, so normalising it again changes nothing."""
    text = data.decode("utf-8", "replace")
    for normalize, error in (
        (rule_addresses.normalize_address, rule_addresses.InvalidAddress),
        (rule_addresses.normalize_domain, rule_addresses.InvalidAddress),
        (mailbox_names.normalize_mailbox_name, mailbox_names.BadMailboxName),
    ):
        try:
            once = normalize(text)
        except error:
            continue
        assert normalize(once) == once, (normalize.__name__, text, once)


def mailauth(data: bytes) -> None:
    """What DNS and arriving messages hand to our own code: DKIM-Signature tag lists
    (RFC 6376 §3.2), DMARC records (RFC 7489 §6.4), From domains and the
    Authentication-Results fields we strip (RFC 8601 §5)."""
    for tags in dkim._signature_tags(data):
        assert isinstance(tags, dict)
    dmarc.parse_record(data)
    dmarc.from_domains(data)
    # RFC 8601 §5: fields that claim our authserv-id are removed from what arrives; what
    # is left claims nothing, and nothing else was touched.
    kept = results.remove_own_results(data, "mx.example.test")
    assert len(kept) <= len(data)
    assert results.own_results_spans(kept, "mx.example.test") == []


TARGETS: dict[str, Target] = {
    "imap": imap,
    "smtp": smtp,
    "pop3": pop3,
    "sasl": sasl_exchange,
    "message": message,
    "headers": headers,
    "mutf7": mailbox_name,
    "list_pattern": list_pattern,
    "mailauth": mailauth,
    "rules": rules,
}
