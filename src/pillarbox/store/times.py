"""How both SQL backends store times, and read them back.

INTERNALDATE is kept as UTC epoch seconds plus the original zone's offset in minutes
(RFC 9051 §2.3.3: the zone is part of the date a client sees); every other time (queue
schedules, claims, a DKIM key's creation, fetch runs) as epoch seconds with their
fraction, so it reads back exactly as written. One module, so that `migrate-store`'s
straight copy between the backends keeps every time. Must not: run SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache


def to_epoch(when: datetime) -> tuple[int, int]:
    """(UTC epoch seconds, zone offset in minutes); a naive time is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    offset = when.utcoffset() or timedelta(0)
    return int(when.timestamp()), int(offset.total_seconds() // 60)


@lru_cache(maxsize=64)
def _zone(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def from_epoch(epoch: int, tz_minutes: int) -> datetime:
    """A stored INTERNALDATE as an aware datetime in its own zone (one zone object per
    offset: a FETCH of many rows builds no new ones)."""
    return datetime.fromtimestamp(epoch, _zone(tz_minutes))


def exact_epoch(when: datetime) -> float:
    """Epoch seconds of an aware datetime, with their fraction (the queue's times and a
    DKIM key's creation read back as written). A naive one is a caller's bug: in which
    zone would it be?"""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: the store needs aware times")
    return when.timestamp()


def from_exact(epoch: float) -> datetime:
    """An `exact_epoch` time read back, in UTC."""
    return datetime.fromtimestamp(epoch, UTC)
