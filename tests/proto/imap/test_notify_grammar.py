"""NOTIFY's grammar (RFC 5465 §8): SET with and without STATUS, every filter, one or
several mailboxes, events as a list or NONE, MessageNew's fetch attributes; NOTIFY NONE;
malformed commands are BAD (ParseError), unknown event names parse (the server refuses
them by name with BADEVENT)."""

from __future__ import annotations

import pytest

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.parser import ParseError, parse_command


def test_notify_none() -> None:
    """``NOTIFY NONE`` carries no groups."""
    assert parse_command(b"a NOTIFY NONE") == c.Notify("a", None)


def test_rfc_5465_example() -> None:
    """The shape of RFC 5465 §3's example: selected with fetch attributes, a subtree of
    two mailboxes, STATUS; words in any case."""
    cmd = parse_command(
        b"a notify set status (selected (MessageNew (uid BODY.PEEK[HEADER.FIELDS (From)])"
        b' messageExpunge FlagChange)) (subtree (INBOX "Lists/x y") (MessageNew'
        b" MessageExpunge)) (personal NONE)"
    )
    assert isinstance(cmd, c.Notify)
    assert cmd.status
    assert cmd.groups is not None
    sel, sub, personal = cmd.groups
    assert sel.filter == "SELECTED"
    assert [e.name for e in sel.events] == ["MESSAGENEW", "MESSAGEEXPUNGE", "FLAGCHANGE"]
    assert sel.events[0].fetch[0] == c.FetchAttribute("UID")
    assert isinstance(sel.events[0].fetch[1], c.FetchBody)
    assert sub == c.NotifyGroup(
        "SUBTREE",
        ("INBOX", "Lists/x y"),
        (c.NotifyEvent("MESSAGENEW"), c.NotifyEvent("MESSAGEEXPUNGE")),
    )
    assert personal == c.NotifyGroup("PERSONAL")


@pytest.mark.parametrize("kind", [b"selected-delayed", b"inboxes", b"subscribed"])
def test_plain_filters(kind: bytes) -> None:
    cmd = parse_command(b"t NOTIFY SET (" + kind + b" (MailboxName SubscriptionChange))")
    assert isinstance(cmd, c.Notify) and cmd.groups is not None
    assert cmd.groups[0].filter == kind.decode().upper()
    assert not cmd.status


def test_one_mailbox_without_parentheses_and_unknown_events() -> None:
    """``mailboxes`` takes a single name bare; an event the grammar does not name is an
    atom (event-ext), kept for the server to refuse."""
    cmd = parse_command(b"t NOTIFY SET (mailboxes Junk (AnnotationChange Foo))")
    assert cmd == c.Notify(
        "t",
        (
            c.NotifyGroup(
                "MAILBOXES", ("Junk",), (c.NotifyEvent("ANNOTATIONCHANGE"), c.NotifyEvent("FOO"))
            ),
        ),
    )


@pytest.mark.parametrize(
    "line",
    [
        b"t NOTIFY",
        b"t NOTIFY SET",
        b"t NOTIFY SET STATUS",
        b"t NOTIFY NONE (personal NONE)",
        b"t NOTIFY GET (personal NONE)",
        b"t NOTIFY SET (personal)",
        b"t NOTIFY SET (personal ())",
        b"t NOTIFY SET (everything (MessageNew MessageExpunge))",
        b"t NOTIFY SET (subtree (MessageNew MessageExpunge))",
        b"t NOTIFY SET (personal (MessageNew MessageExpunge)",
        b"t NOTIFY SET (personal (MessageNew MessageExpunge)))",
        b"t NOTIFY SET (personal (MessageNew (NOSUCH) MessageExpunge))",
        b"t NOTIFY SET (personal NONE)(inboxes NONE)",
    ],
)
def test_malformed(line: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(line)
