"""Parse function of NOTIFY (RFC 5465 §8):

    notify          = "NOTIFY" SP (notify-set / notify-none)
    notify-set      = "SET" [status-indicator] SP event-groups
    status-indicator = SP "STATUS"
    notify-none     = "NONE"
    event-groups    = event-group *(SP event-group)
    event-group     = "(" filter-mailboxes SP events ")"
    filter-mailboxes = "selected" / "selected-delayed" / "inboxes" / "personal" /
                      "subscribed" / ("subtree" SP one-or-more-mailbox) /
                      ("mailboxes" SP one-or-more-mailbox)
    one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"
    events          = ( "(" event *(SP event) ")" ) / "NONE"
    event           = ("MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]) / atom

Which events and filter combinations are acceptable is the server's business (it answers
BAD or ``NO [BADEVENT]``); this only reads the syntax.
"""

from __future__ import annotations

from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import LPAREN, SP

# One fetch-att reader for FETCH and MessageNew (RFC 5465 §5.2 uses RFC 9051's fetch-att).
from pillarbox.proto.imap.grammar.fetch import _fetch_att as fetch_att
from pillarbox.proto.imap.grammar.reader import CommandParser, ParseError, Reader

_PLAIN_FILTERS: Final = frozenset(
    {"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED"}
)
_NAMED_FILTERS: Final = frozenset({"SUBTREE", "MAILBOXES"})


def _mailboxes(r: Reader) -> tuple[str, ...]:
    if r.peek() != LPAREN:
        return (r.mailbox(),)
    r.open_paren()
    names = [r.mailbox()]
    while r.peek() == SP:
        r.pos += 1
        names.append(r.mailbox())
    r.close_paren()
    return tuple(names)


def _event(r: Reader) -> c.NotifyEvent:
    name = r.upper_atom("event")
    if name != "MESSAGENEW" or r.data[r.pos : r.pos + 2] != b" (":
        return c.NotifyEvent(name)
    r.pos += 1
    r.open_paren()
    items: list[c.FetchItem] = []
    fetch_att(r, items, allow_macro=False)
    while r.peek() == SP:
        r.pos += 1
        fetch_att(r, items, allow_macro=False)
    r.close_paren()
    return c.NotifyEvent(name, tuple(items))


def _group(r: Reader) -> c.NotifyGroup:
    r.open_paren()
    kind = r.upper_atom("filter")
    names: tuple[str, ...] = ()
    if kind in _NAMED_FILTERS:
        r.sp()
        names = _mailboxes(r)
    elif kind not in _PLAIN_FILTERS:
        raise ParseError("Unknown NOTIFY filter")
    r.sp()
    events: list[c.NotifyEvent] = []
    if r.peek() == LPAREN:
        r.open_paren()
        events.append(_event(r))
        while r.peek() == SP:
            r.pos += 1
            events.append(_event(r))
        r.close_paren()
    elif r.upper_atom("events") != "NONE":
        raise ParseError("Expected event list or NONE")
    r.close_paren()
    return c.NotifyGroup(kind, names, tuple(events))


def _parse_notify(r: Reader, tag: str) -> c.Notify:
    r.sp()
    word = r.upper_atom("NOTIFY operation")
    if word == "NONE":
        r.end()
        return c.Notify(tag, None)
    if word != "SET":
        raise ParseError("Expected SET or NONE")
    r.sp()
    status = False
    if r.peek() != LPAREN:
        if r.upper_atom("STATUS") != "STATUS":
            raise ParseError("Expected STATUS or an event group")
        status = True
        r.sp()
    groups = [_group(r)]
    while r.peek() == SP:
        r.pos += 1
        groups.append(_group(r))
    r.end()
    return c.Notify(tag, tuple(groups), status)


PARSERS: Final[dict[str, CommandParser]] = {"NOTIFY": _parse_notify}
