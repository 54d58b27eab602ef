"""SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO) and THREAD (RFC 5256 §3): the
order and the threads of a search result.

Theory of operation: `SelectedMailbox.sort` / `.thread` run the search as SEARCH does and
hand the matching UIDs here; one store call (`Store.sort_rows`) returns the values stored
at delivery — internal date, size, sent date, decoded subject, ENVELOPE bytes — and the
keys are computed from them: addresses from the ENVELOPE (`envelope_fields`), the base
subject from the decoded subject (`base_subject`). No message is re-parsed and no query
runs per message. THREAD feeds the same rows (with the References msg-ids kept at
delivery) to the pure algorithms of `threads`. Strings compare under i;ascii-casemap, the
default collation (RFC 5256 §2.3); messages equal under every criterion stay in mailbox
(UID) order.

Must not: touch the protocol (criteria arrive as `SortCriterion` values), or read
message files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from pillarbox.message.base_subject import base_subject, casemap, split_subject
from pillarbox.message.encoded_words import decode_header_value
from pillarbox.message.envelope_fields import EnvelopeAddress, EnvelopeFields, read_envelope
from pillarbox.message.message_ids import message_ids, references_field
from pillarbox.model.sorting import SortCriterion, SortRow
from pillarbox.services.mailbox import call_store
from pillarbox.services.threads import ThreadInput, ThreadNode, ordered_subject, references
from pillarbox.store.api import Store

THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")
"""THREAD algorithms offered (RFC 5256 §3), as advertised THREAD=<name>."""

SortValue = int | float | str


def _first_mailbox(addresses: list[EnvelopeAddress]) -> str:
    """addr-mailbox of the first address (RFC 5256 §3 CC, FROM, TO); "" if none."""
    if not addresses or addresses[0].mailbox is None:
        return ""
    return casemap(addresses[0].mailbox.decode("utf-8", "replace"))


def _display(addresses: list[EnvelopeAddress]) -> str:
    """RFC 5957 §3: the decoded display name of the first address, or its addr-spec
    (mailbox@host) when it has none."""
    if not addresses:
        return ""
    first = addresses[0]
    if first.name is not None:
        name = decode_header_value(first.name).strip()
        if name:
            return casemap(name)
    spec = (first.mailbox or b"") + b"@" + (first.host or b"")
    return casemap(spec.decode("utf-8", "replace"))


def _sent_date(row: SortRow) -> float:
    """RFC 5256 §3 DATE: the sent date in UTC; INTERNALDATE when there is none."""
    when: datetime = row.sent_date if row.sent_date is not None else row.internaldate
    return when.timestamp()


class _Keys:
    """Sort values of one message, each computed on first use."""

    __slots__ = ("_envelope", "row")

    def __init__(self, row: SortRow) -> None:
        self.row = row
        self._envelope: EnvelopeFields | None = None

    @property
    def envelope(self) -> EnvelopeFields:
        if self._envelope is None:
            self._envelope = read_envelope(self.row.envelope)
        return self._envelope


_KEY_FUNCTIONS: dict[str, Callable[[_Keys], SortValue]] = {
    "ARRIVAL": lambda k: k.row.internaldate.timestamp(),
    "CC": lambda k: _first_mailbox(k.envelope.cc),
    "DATE": lambda k: _sent_date(k.row),
    "FROM": lambda k: _first_mailbox(k.envelope.from_),
    "SIZE": lambda k: k.row.size,
    "SUBJECT": lambda k: base_subject(k.row.subject),
    "TO": lambda k: _first_mailbox(k.envelope.to),
    "DISPLAYFROM": lambda k: _display(k.envelope.from_),
    "DISPLAYTO": lambda k: _display(k.envelope.to),
}


def sort_order(rows: Sequence[SortRow], criteria: Sequence[SortCriterion]) -> list[int]:
    """The UIDs of `rows` in the order `criteria` give (RFC 5256 §3); ties keep UID order.

    Stable sorts from the last criterion to the first: each REVERSE flips only its key,
    and messages equal under every key stay in ascending UID order.
    """
    items = sorted((_Keys(r) for r in rows), key=lambda k: k.row.uid)
    for criterion in reversed(criteria):
        fn = _KEY_FUNCTIONS[criterion.key]
        values = {id(k): fn(k) for k in items}
        items.sort(key=lambda k: values[id(k)], reverse=criterion.reverse)
    return [k.row.uid for k in items]


async def sorted_uids(
    store: Store, mailbox_id: int, uids: Sequence[int], criteria: Sequence[SortCriterion]
) -> list[int]:
    """`uids` in the order of `criteria` (RFC 5256 §3): one store read."""
    rows = await call_store(store.sort_rows(mailbox_id, uids))
    return sort_order(rows, criteria)


def thread_input(row: SortRow, *, with_references: bool) -> ThreadInput:
    """What the threading algorithms need of one message (RFC 5256 §3 REFERENCES (1):
    References msg-ids, else the first In-Reply-To msg-id)."""
    subject, reply = split_subject(row.subject)
    if not with_references:
        return ThreadInput(row.uid, _sent_date(row), subject, reply)
    envelope = read_envelope(row.envelope)
    own = message_ids((envelope.message_id or b"").decode("latin-1"))
    if row.references is not None:
        refs = row.references.split()
    else:  # stored before References were kept: from the decoded header block
        refs = message_ids(references_field(row.header_text))
    if not refs:
        refs = message_ids((envelope.in_reply_to or b"").decode("latin-1"))[:1]
    return ThreadInput(
        row.uid, _sent_date(row), subject, reply, own[0] if own else None, tuple(refs)
    )


async def threads(
    store: Store, mailbox_id: int, uids: Sequence[int], algorithm: str
) -> list[ThreadNode]:
    """The threads of `uids` by `algorithm` (RFC 5256 §3): one store read."""
    with_refs = algorithm == "REFERENCES"
    rows = await call_store(store.sort_rows(mailbox_id, uids, with_references=with_refs))
    messages = [thread_input(r, with_references=with_refs) for r in rows]
    return references(messages) if with_refs else ordered_subject(messages)
