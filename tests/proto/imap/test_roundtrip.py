"""Round trip: generated commands → test-side wire form → parser → the same dataclass.

Hypothesis builds command dataclasses (every argument shape, strings as atoms, quoted
strings and both literal kinds), `wire.Writer` serialises them, and the connection, fed in
random chunks, must give back an equal event.
"""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import State

from .driver import run
from .wire import Writer

tags = st.text("abcdefghijklmnopqrstuvwxyzABCDEF0123456789.-_", min_size=1, max_size=8)
atoms = st.text("abcdefghijklmnopqrstuvwxyzXYZ0123456789$-_.", min_size=1, max_size=10)
nz = st.integers(1, 2**32 - 1)
modseq = st.integers(1, 2**63 - 1)
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
ascii_texts = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=20)
byte_strings = st.binary(max_size=20).map(lambda b: b.replace(b"\x00", b""))
# SEARCH strings: any text but NUL (not allowed in a literal), sent as UTF-8.
search_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)


@st.composite
def seqsets(draw: st.DrawFn, allow_saved: bool = True) -> c.SequenceSet:
    if allow_saved and draw(st.integers(0, 9)) == 0:
        return c.SequenceSet((), saved=True)
    nums = st.one_of(st.none(), nz)
    ranges = draw(
        st.lists(
            st.one_of(
                nums.map(lambda n: c.SeqRange(n, n)),
                st.tuples(nums, nums).map(lambda t: c.SeqRange(*t)),
            ),
            min_size=1,
            max_size=5,
        )
    )
    return c.SequenceSet(tuple(ranges))


system_flags = st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"])
flags = st.one_of(system_flags, atoms)
dates = st.dates(datetime.date(1000, 1, 1), datetime.date(9999, 12, 31))

leaf_keys = st.one_of(
    st.just(c.SearchAll()),
    st.builds(
        c.SearchFlag,
        st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent"]),
        st.booleans(),
    ),
    st.builds(c.SearchFlag, atoms, st.booleans()),
    st.builds(
        c.SearchHeader, st.sampled_from(["from", "to", "cc", "bcc", "subject", "x-y"]), search_text
    ),
    st.builds(c.SearchText, search_text, st.booleans()),
    st.builds(c.SearchDate, st.sampled_from(["before", "on", "since"]), dates, st.booleans()),
    st.builds(c.SearchSize, st.sampled_from(["larger", "smaller"]), st.integers(0, 2**40)),
    st.builds(c.SearchSequence, seqsets(), st.booleans()),
    st.builds(c.SearchModseq, st.integers(0, 2**63 - 1)),
    st.builds(
        c.SearchModseq,
        st.integers(0, 2**63 - 1),
        st.sampled_from(["/flags/\\draft", "/flags/$junk"]),
        st.sampled_from(["priv", "shared", "all"]),
    ),
    st.builds(c.SearchWithin, st.sampled_from(["older", "younger"]), nz),
    st.builds(c.SearchSaveDate, st.sampled_from(["before", "on", "since"]), dates),
    st.builds(c.SearchEmailId, st.one_of(st.none(), st.integers(0, 2**64 - 1))),
    st.builds(c.SearchThreadId, st.one_of(st.none(), st.integers(0, 2**64 - 1))),
)
search_keys = st.recursive(
    leaf_keys,
    lambda inner: st.one_of(
        st.builds(c.SearchNot, inner),
        st.builds(c.SearchOr, inner, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda ks: c.SearchAnd(tuple(ks))),
    ),
    max_leaves=8,
)

parts = st.lists(st.integers(1, 50), max_size=3).map(tuple)
partials = st.one_of(st.none(), st.builds(c.Partial, st.integers(0, 2**40), st.integers(1, 2**40)))


@st.composite
def fetch_bodies(draw: st.DrawFn) -> c.FetchBody:
    part = draw(parts)
    if draw(st.booleans()):
        return c.FetchBody(part, partial=draw(partials), peek=draw(st.booleans()), binary=True)
    kinds: list[c.SectionKind] = ["", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"]
    if part:
        kinds.append("MIME")
    kind = draw(st.sampled_from(kinds))
    fields: tuple[str, ...] = ()
    if kind.startswith("HEADER.FIELDS"):
        fields = tuple(draw(st.lists(atoms, min_size=1, max_size=3)))
    return c.FetchBody(part, kind, fields, draw(partials), draw(st.booleans()))


fetch_items = st.one_of(
    st.sampled_from(sorted(c.SIMPLE_FETCH_ATTRIBUTES)).map(c.FetchAttribute),
    fetch_bodies(),
    st.builds(c.FetchBinarySize, parts),
)


@st.composite
def fetches(draw: st.DrawFn) -> c.Fetch:
    uid = draw(st.booleans())
    changed = draw(st.one_of(st.none(), modseq))
    vanished = uid and changed is not None and draw(st.booleans())
    items = tuple(draw(st.lists(fetch_items, min_size=1, max_size=5)))
    return c.Fetch(draw(tags), uid, draw(seqsets()), items, changed, vanished)


zones = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda m: datetime.timezone(datetime.timedelta(minutes=m))
)
date_times = st.builds(
    lambda d, h, mi, s, tz: datetime.datetime(d.year, d.month, d.day, h, mi, s, tzinfo=tz),
    dates,
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    zones,
)


@st.composite
def append_messages(draw: st.DrawFn) -> c.AppendMessage:
    binary = draw(st.booleans())
    utf8 = binary and draw(st.booleans())
    data = draw(st.binary(max_size=30))
    if not binary:
        data = data.replace(b"\x00", b"")
    return c.AppendMessage(
        tuple(draw(st.lists(flags, max_size=3))),
        draw(st.one_of(st.none(), date_times)),
        data,
        binary,
        utf8,
    )


status_items = st.lists(st.sampled_from(sorted(c.STATUS_ITEMS)), min_size=1, max_size=4).map(tuple)


@st.composite
def lists(draw: st.DrawFn) -> c.List:
    extended = draw(st.booleans())
    if not extended:
        return c.List(draw(tags), draw(texts), (draw(texts),))
    return c.List(
        draw(tags),
        draw(texts),
        tuple(draw(st.lists(texts, min_size=1, max_size=3))),
        tuple(
            draw(st.lists(st.sampled_from(["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH"]), max_size=3))
        ),
        tuple(
            draw(st.lists(st.sampled_from(["SUBSCRIBED", "CHILDREN", "SPECIAL-USE"]), max_size=3))
        ),
        draw(st.one_of(st.none(), status_items)),
        True,
    )


commands = st.one_of(
    st.builds(c.Login, tags, texts, texts),
    st.builds(
        c.Authenticate,
        tags,
        st.sampled_from(["PLAIN", "LOGIN", "XOAUTH2"]),
        st.one_of(st.none(), st.binary(max_size=40)),
    ),
    st.builds(
        c.Enable,
        tags,
        st.lists(st.sampled_from(["CONDSTORE", "QRESYNC", "UTF8=ACCEPT"]), min_size=1).map(tuple),
    ),
    st.builds(
        lambda t, m, cs: c.Select(t, m, (("CONDSTORE", None),) if cs else (), cs),
        tags,
        texts,
        st.booleans(),
    ),
    st.builds(
        lambda t, m, cs: c.Examine(t, m, (("CONDSTORE", None),) if cs else (), cs),
        tags,
        texts,
        st.booleans(),
    ),
    st.builds(c.Delete, tags, texts),
    st.builds(c.Subscribe, tags, texts),
    st.builds(c.Unsubscribe, tags, texts),
    st.builds(c.Rename, tags, texts, texts),
    st.builds(c.Status, tags, texts, status_items),
    lists(),
    st.builds(
        c.Append, tags, texts, st.lists(append_messages(), min_size=1, max_size=3).map(tuple)
    ),
    st.builds(
        c.Search,
        tags,
        st.booleans(),
        # Strings are decoded per CHARSET: UTF-8 round-trips any text (US-ASCII refusing
        # 8-bit strings is tested in test_parser).
        st.one_of(st.none(), st.just("UTF-8")),
        st.lists(search_keys, min_size=1, max_size=3).map(lambda ks: c.SearchAnd(tuple(ks))),
        st.one_of(
            st.none(),
            st.lists(st.sampled_from(["MIN", "MAX", "ALL", "COUNT", "SAVE"]), max_size=3).map(
                tuple
            ),
        ),
    ),
    fetches(),
    st.builds(
        c.Store,
        tags,
        st.booleans(),
        seqsets(),
        st.sampled_from(["replace", "add", "remove"]),
        st.booleans(),
        st.lists(flags, max_size=4).map(tuple),
        st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    ),
    st.builds(c.Copy, tags, st.booleans(), seqsets(), texts),
    st.builds(c.Move, tags, st.booleans(), seqsets(), texts),
    st.builds(c.UidExpunge, tags, seqsets()),
    st.builds(
        c.Id,
        tags,
        st.one_of(
            st.none(),
            st.lists(st.tuples(ascii_texts, st.one_of(st.none(), ascii_texts)), max_size=3).map(
                tuple
            ),
        ),
    ),
)

FORMS = ["atom", "quoted", "literal", "literal+"]


def state_for(cmd: c.Command) -> State:
    if isinstance(cmd, c.Login | c.Authenticate):
        return State.NOT_AUTHENTICATED
    if isinstance(cmd, c.Enable):
        return State.AUTHENTICATED
    return State.SELECTED


@settings(max_examples=400, deadline=None)
@given(cmd=commands, data=st.data())
def test_roundtrip(cmd: c.Command, data: st.DataObject) -> None:
    """serialise(cmd) parses back to cmd, however the bytes are chunked."""
    writer = Writer(lambda: data.draw(st.sampled_from(FORMS)))
    wire = writer.command(cmd) + b"\r\n"
    cut = data.draw(st.integers(0, len(wire)))
    events = [
        e
        for e in run([wire[:cut], wire[cut:]], state=state_for(cmd), utf8=True, auto=False)
        if not isinstance(e, c.ContinuationNeeded)
    ]
    assert events == [cmd], wire
