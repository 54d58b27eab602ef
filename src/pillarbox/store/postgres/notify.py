"""The NOTIFY payloads that carry this node's changes to the other nodes.

A payload names what changed, never the rows: `v1|<node>|<account>|<mailbox>|<kind>|<modseq>`
with kind `a` (messages added), `f` (flags changed), `x` (expunged) or `m` (the account's
mailboxes changed; mailbox 0). It stays far below PostgreSQL's 8000-byte limit, and a
listening node reads the details by MODSEQ (`store.postgres.bus`). One notify per
(mailbox, kind) per transaction, with the highest MODSEQ: PostgreSQL's notification
queue lock is taken by every notifying commit, so fewer is cheaper.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from pillarbox.model import (
    Change,
    FlagsChanged,
    MailboxesChanged,
    MessagesAdded,
    MessagesExpunged,
    Resync,
)

Conn = asyncpg.Connection | PoolConnectionProxy

CHANNEL = "pb_changes"
VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Notice:
    """One decoded payload."""

    node: str
    account_id: int
    mailbox_id: int
    kind: str  # a f x m r
    modseq: int


def notices(node: str, changes: Iterable[Change]) -> list[Notice]:
    """The coalesced notices of one transaction's changes."""
    best: dict[tuple[int, int, str], int] = {}
    for change in changes:
        if isinstance(change, MessagesAdded | FlagsChanged):
            kind = "a" if isinstance(change, MessagesAdded) else "f"
            modseq = max((row.modseq for row in change.rows), default=0)
            key = (change.account_id, change.mailbox_id, kind)
        elif isinstance(change, MessagesExpunged):
            key, modseq = (change.account_id, change.mailbox_id, "x"), change.modseq
        elif isinstance(change, MailboxesChanged):
            key, modseq = (change.account_id, 0, "m"), 0
        elif isinstance(change, Resync):
            key, modseq = (change.account_id, 0, "r"), 0
        else:  # pragma: no cover - Change is closed
            continue
        best[key] = max(best.get(key, 0), modseq)
    return [Notice(node, a, m, k, s) for (a, m, k), s in best.items()]


def encode(notice: Notice) -> str:
    n = notice
    return f"{VERSION}|{n.node}|{n.account_id}|{n.mailbox_id}|{n.kind}|{n.modseq}"


def decode(payload: str) -> Notice | None:
    """The notice in `payload`, or None for one this code does not understand (a newer
    node's format: ignored rather than misread)."""
    parts = payload.split("|")
    if len(parts) != 6 or parts[0] != VERSION:
        return None
    try:
        return Notice(parts[1], int(parts[2]), int(parts[3]), parts[4], int(parts[5]))
    except ValueError:
        return None


async def send(conn: Conn, node: str, changes: Iterable[Change]) -> None:
    """NOTIFY the changes inside the caller's transaction (delivered at its commit)."""
    payloads = [encode(n) for n in notices(node, changes)]
    if payloads:
        await conn.execute(
            "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", CHANNEL, payloads
        )
