"""Dates in commands: SEARCH's date (BEFORE, ON, SINCE, SENT*) and APPEND's date-time.

Readers over a `Reader`, kept out of it so that the reader holds only the tokens most
commands share: no other command reads a date (RFC 9051 §9 date, date-time). Month names
are matched case-insensitively; the offset must be under 24 hours, and an impossible day
(31-Feb) is a `ParseError` rather than an exception from `datetime`.
"""

from __future__ import annotations

import datetime

from pillarbox.proto.imap.grammar.chars import DIGIT, DQUOTE, MONTH_NUM, SP
from pillarbox.proto.imap.grammar.reader import ParseError, Reader


def date(r: Reader) -> datetime.date:
    """RFC 9051 §9 date = date-text / DQUOTE date-text DQUOTE."""
    quoted = r.peek() == DQUOTE
    if quoted:
        r.pos += 1
    day = r.number(99)
    r.expect(b"-")
    month = MONTH_NUM.get(r.data[r.pos : r.pos + 3].upper())
    if month is None:
        raise ParseError("Invalid date")
    r.pos += 3
    r.expect(b"-")
    year_raw = r.run(DIGIT)
    if len(year_raw) != 4:
        raise ParseError("Invalid date")
    if quoted:
        r.expect(b'"')
    try:
        return datetime.date(int(year_raw), month, day)
    except ValueError:
        raise ParseError("Invalid date") from None


def date_time(r: Reader) -> datetime.datetime:
    """RFC 9051 §9 date-time: ``"dd-Mon-yyyy hh:mm:ss +zzzz"`` (day may be " d")."""
    r.expect(b'"')
    if r.peek() == SP:
        r.pos += 1
    day_raw = r.run(DIGIT)
    if not 1 <= len(day_raw) <= 2:
        raise ParseError("Invalid date-time")
    r.expect(b"-")
    month = MONTH_NUM.get(r.data[r.pos : r.pos + 3].upper())
    if month is None:
        raise ParseError("Invalid date-time")
    r.pos += 3
    r.expect(b"-")
    rest = r.data[r.pos : r.pos + 20]
    # "yyyy hh:mm:ss +zzzz""
    if (
        len(rest) != 20
        or rest[4:5] != b" "
        or rest[7:8] != b":"
        or rest[10:11] != b":"
        or rest[13:14] != b" "
        or rest[14:15] not in (b"+", b"-")
        or rest[19:20] != b'"'
        or not all(DIGIT[b] for b in rest[0:4] + rest[5:7] + rest[8:10] + rest[11:13] + rest[15:19])
    ):
        raise ParseError("Invalid date-time")
    r.pos += 20
    zone_minutes = int(rest[15:17]) * 60 + int(rest[17:19])
    if zone_minutes >= 24 * 60:
        raise ParseError("Invalid date-time")
    sign = 1 if rest[14:15] == b"+" else -1
    try:
        tz = datetime.timezone(datetime.timedelta(minutes=sign * zone_minutes))
        return datetime.datetime(
            int(rest[0:4]),
            month,
            int(day_raw),
            int(rest[5:7]),
            int(rest[8:10]),
            int(rest[11:13]),
            tzinfo=tz,
        )
    except ValueError:
        raise ParseError("Invalid date-time") from None
