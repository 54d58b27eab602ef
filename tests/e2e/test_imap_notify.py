"""NOTIFY (RFC 5465) on the wire, with raw sockets: one connection is told about every
mailbox it watches. A client with ``NOTIFY SET`` on personal mailboxes gets ``* STATUS``
for a delivery or APPEND into a mailbox it has not selected within one second, without
sending anything; ``NOTIFY NONE`` stops that; ``SET STATUS`` answers a STATUS for every
watched unselected mailbox first; other sessions' CREATE / RENAME / DELETE come as LIST
(``OLDNAME``, ``\\NonExistent``) and (UN)SUBSCRIBE as LIST with or without
``\\Subscribed``; unsupported events are refused with ``NO [BADEVENT (...)]``; the first
matching group decides (``(mailboxes Spam NONE)`` silences Spam); the selected mailbox
still gets EXISTS / FETCH / EXPUNGE (pushed at once with ``selected``, expunges held
back with ``selected-delayed``) and never a STATUS, but no other session's flag changes
when its group leaves out FlagChange; every STATUS has the same items (UIDVALIDITY
included); a client that stops reading gets ``NOTIFICATIONOVERFLOW`` and NOTIFY is off."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.modseq_client import append, logged_in, ok, read_until, untagged
from tests.e2e.test_imap_raw import RawImap

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

MESSAGE_EVENTS = "(MessageNew MessageExpunge)"


@pytest.fixture
def clients() -> Iterator[list[RawImap]]:
    opened: list[RawImap] = []
    yield opened
    for c in opened:
        c.close()


@pytest.fixture
def login(server: RunningServer, clients: list[RawImap]) -> Callable[[], RawImap]:
    def new() -> RawImap:
        c = logged_in(server.port("imap"))
        clients.append(c)
        return c

    return new


def _deliver(server: RunningServer, subject: str = "hello") -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=30) as smtp:
        msg = f"From: x@other.test\r\nSubject: {subject}\r\n\r\nbody\r\n"
        smtp.sendmail("x@other.test", ["alice@example.test"], msg)


def _status_of(lines: list[bytes], name: str) -> dict[str, int] | None:
    """The items of the last ``* STATUS name (...)`` among `lines`, or None."""
    found = None
    for line in lines:
        m = re.match(rb'\* STATUS "?([^"(]*?)"? \(([^)]*)\)$', line)
        if m and m.group(1).decode() == name:
            words = m.group(2).decode().split()
            found = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    return found


def _counts(lines: list[bytes], name: str) -> dict[str, int] | None:
    """`_status_of` without UIDVALIDITY, which every STATUS notification carries."""
    found = _status_of(lines, name)
    if found is None:
        return None
    assert found.pop("UIDVALIDITY") > 0, lines
    return found


def _has_status(name: str) -> Callable[[list[bytes]], bool]:
    return lambda lines: _status_of(lines, name) is not None


def _statuses(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if line.startswith(b"* STATUS")]


def test_notify_is_advertised(login: Callable[[], RawImap]) -> None:
    c = login()
    caps = ok(c.cmd("CAPABILITY"))[0].split()
    assert b"NOTIFY" in caps


def test_delivery_into_an_unselected_mailbox_is_reported_within_one_second(
    server: RunningServer, login: Callable[[], RawImap]
) -> None:
    """The issue's test: NOTIFY SET on personal mailboxes, another folder selected; an
    SMTP delivery into INBOX, then an APPEND into a third folder by another session, each
    reach the client as ``* STATUS`` within one second, the client sending nothing."""
    c, other = login(), login()
    ok(other.cmd("CREATE Reading"))
    ok(other.cmd("CREATE Work"))
    ok(c.cmd("SELECT Reading"))
    ok(c.cmd(f"NOTIFY SET (selected {MESSAGE_EVENTS}) (personal {MESSAGE_EVENTS})"))
    _deliver(server)
    lines = read_until(c, _has_status("INBOX"), timeout=1)
    assert _counts(lines, "INBOX") == {"MESSAGES": 1, "UIDNEXT": 2, "UNSEEN": 1}
    append(other, "Work")
    lines = read_until(c, _has_status("Work"), timeout=1)
    assert _counts(lines, "Work") == {"MESSAGES": 1, "UIDNEXT": 2, "UNSEEN": 1}
    # An expunge elsewhere is reported the same way.
    ok(other.cmd("SELECT Work"))
    ok(other.cmd("STORE 1 +FLAGS (\\Deleted)"))
    ok(other.cmd("EXPUNGE"))
    lines = read_until(c, _has_status("Work"), timeout=1)
    assert _counts(lines, "Work") == {"MESSAGES": 0, "UIDNEXT": 2, "UNSEEN": 0}
    # The session still works: the selected mailbox saw nothing, the command answers.
    assert ok(c.cmd("NOOP"))[-1].endswith(b" OK NOOP completed")


def test_without_a_selected_mailbox_and_during_idle(
    server: RunningServer, login: Callable[[], RawImap]
) -> None:
    """In the authenticated state and in IDLE the STATUS comes as well."""
    c, other = login(), login()
    ok(c.cmd(f"NOTIFY SET (inboxes {MESSAGE_EVENTS})"))
    append(other, "INBOX")
    read_until(c, _has_status("INBOX"), timeout=1)
    c.send(b"i1 IDLE\r\n")
    assert c.line().startswith(b"+ ")
    _deliver(server)
    lines = read_until(c, _has_status("INBOX"), timeout=1)
    assert _counts(lines, "INBOX") == {"MESSAGES": 2, "UIDNEXT": 3, "UNSEEN": 2}
    c.send(b"DONE\r\n")
    assert c.until(b"i1")[-1] == b"i1 OK IDLE terminated"


def test_notify_none_stops_notifications(login: Callable[[], RawImap]) -> None:
    """After NOTIFY NONE a change elsewhere gives nothing, also at the next command; while
    set, the same change shows up there at the latest."""
    c, other = login(), login()
    ok(c.cmd(f"NOTIFY SET (personal {MESSAGE_EVENTS})"))
    append(other, "INBOX")
    # Pushed before the NOOP or reported at its end: either way before its tagged OK.
    assert _status_of(ok(c.cmd("NOOP")), "INBOX") is not None
    ok(c.cmd("NOTIFY NONE"))
    append(other, "INBOX")
    ok(other.cmd("CREATE Later"))
    lines = ok(c.cmd("NOOP"))
    assert _statuses(lines) == [] and len(lines) == 1, lines


def test_set_status_reports_every_watched_unselected_mailbox(
    server: RunningServer, login: Callable[[], RawImap]
) -> None:
    """RFC 5465 §3: with STATUS, the OK is preceded by a STATUS (with UIDVALIDITY) for each
    mailbox the message events watch, except the selected one; HIGHESTMODSEQ once
    CONDSTORE is enabled."""
    c, other = login(), login()
    for name in ("A", "B", "Spam"):
        ok(other.cmd(f"CREATE {name}"))
    append(other, "A")
    append(other, "A", flags="(\\Seen) ")
    ok(c.cmd("ENABLE CONDSTORE"))
    ok(c.cmd("SELECT B"))
    lines = ok(
        c.cmd(
            f"NOTIFY SET STATUS (selected {MESSAGE_EVENTS}) (mailboxes Spam NONE)"
            f" (personal {MESSAGE_EVENTS})"
        )
    )
    names = [re.match(rb'\* STATUS "?([^" ]+)', line).group(1) for line in _statuses(lines)]  # type: ignore[union-attr]
    assert b"A" in names and b"INBOX" in names and len(set(names)) == len(names)
    assert b"B" not in names and b"Spam" not in names
    a = _status_of(lines, "A")
    assert a is not None
    assert (a["MESSAGES"], a["UIDNEXT"], a["UNSEEN"]) == (2, 3, 1)
    assert a["UIDVALIDITY"] > 0 and a["HIGHESTMODSEQ"] > 0
    assert untagged(lines) == _statuses(lines)


def test_first_matching_group_decides(login: Callable[[], RawImap]) -> None:
    """``(mailboxes Spam NONE)`` before ``(personal ...)``: Spam is silent. The Spam
    APPEND is published before the INBOX one, so when INBOX's STATUS arrives Spam's
    would have come already."""
    c, other = login(), login()
    ok(other.cmd("CREATE Spam"))
    ok(c.cmd(f"NOTIFY SET (mailboxes Spam NONE) (personal {MESSAGE_EVENTS})"))
    append(other, "Spam")
    append(other, "INBOX")
    lines = read_until(c, _has_status("INBOX"), timeout=1)
    assert _status_of(lines, "Spam") is None, lines
    ok(c.cmd(f"NOTIFY SET (personal {MESSAGE_EVENTS})"))
    append(other, "Spam")
    read_until(c, _has_status("Spam"), timeout=1)


def test_flag_changes_only_when_asked(login: Callable[[], RawImap]) -> None:
    """FlagChange makes a flag change elsewhere a STATUS (UNSEEN changes); without it a
    flag change is not an event."""
    c, other = login(), login()
    append(other, "INBOX")
    ok(other.cmd("SELECT INBOX"))
    ok(c.cmd("NOTIFY SET (inboxes (MessageNew MessageExpunge FlagChange))"))
    ok(other.cmd("STORE 1 +FLAGS (\\Seen)"))
    lines = read_until(c, _has_status("INBOX"), timeout=1)
    assert _counts(lines, "INBOX") == {"MESSAGES": 1, "UIDNEXT": 2, "UNSEEN": 0}
    ok(c.cmd(f"NOTIFY SET (inboxes {MESSAGE_EVENTS})"))
    ok(other.cmd("STORE 1 -FLAGS (\\Seen)"))
    assert _statuses(ok(c.cmd("NOOP"))) == []


def test_mailbox_names(login: Callable[[], RawImap]) -> None:
    """RFC 5465 §5.4: another session's CREATE, RENAME and DELETE come as LIST; a rename
    names the old name (OLDNAME), a deleted mailbox is \\NonExistent."""
    c, other = login(), login()
    ok(c.cmd("NOTIFY SET (personal (MailboxName))"))
    ok(other.cmd("CREATE Projects"))
    assert read_until(c, lambda ls: bool(ls), timeout=1) == [b'* LIST () "/" "Projects"']
    ok(other.cmd("RENAME Projects Done"))
    assert read_until(c, lambda ls: bool(ls), timeout=1) == [
        b'* LIST () "/" "Done" ("OLDNAME" ("Projects"))'
    ]
    ok(other.cmd("DELETE Done"))
    assert read_until(c, lambda ls: bool(ls), timeout=1) == [b'* LIST (\\NonExistent) "/" "Done"']
    # Without MailboxName, a new mailbox is no event.
    ok(c.cmd(f"NOTIFY SET (personal {MESSAGE_EVENTS})"))
    ok(other.cmd("CREATE Quiet"))
    assert len(ok(c.cmd("NOOP"))) == 1


def test_subscription_changes(login: Callable[[], RawImap]) -> None:
    """RFC 5465 §5.5: SUBSCRIBE / UNSUBSCRIBE by another session come as LIST with and
    without \\Subscribed."""
    c, other = login(), login()
    ok(other.cmd("CREATE News"))
    ok(c.cmd("NOTIFY SET (personal (SubscriptionChange))"))
    ok(other.cmd("SUBSCRIBE News"))
    assert read_until(c, lambda ls: bool(ls), timeout=1) == [b'* LIST (\\Subscribed) "/" "News"']
    ok(other.cmd("UNSUBSCRIBE News"))
    assert read_until(c, lambda ls: bool(ls), timeout=1) == [b'* LIST () "/" "News"']


@pytest.mark.parametrize(
    "events",
    [
        "(MessageNew MessageExpunge AnnotationChange)",
        "(MailboxMetadataChange)",
        "(ServerMetadataChange)",
        "(MailboxName SomethingNew)",
    ],
)
def test_unsupported_events_are_refused_by_name(login: Callable[[], RawImap], events: str) -> None:
    """RFC 5465 §5: NO [BADEVENT (the supported events)], and the old setting stays."""
    c = login()
    lines = c.cmd(f"NOTIFY SET (personal {events})")
    assert lines[-1].split(b" ", 1)[1] == (
        b"NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName"
        b" SubscriptionChange)] Unsupported NOTIFY event"
    )
    assert len(lines) == 1


@pytest.mark.parametrize(
    "groups",
    [
        "(personal (MessageNew))",
        "(personal (MessageExpunge))",
        "(personal (FlagChange MailboxName))",
        f"(selected {MESSAGE_EVENTS}) (selected-delayed {MESSAGE_EVENTS})",
    ],
)
def test_invalid_combinations_are_bad(login: Callable[[], RawImap], groups: str) -> None:
    """RFC 5465 §5: MessageNew and MessageExpunge go together, FlagChange needs them;
    RFC 5465 §8: one selected group at most."""
    c = login()
    lines = c.cmd(f"NOTIFY SET {groups}")
    assert lines[-1].split()[1] == b"BAD", lines
    assert len(lines) == 1


def test_selected_mailbox_gets_normal_updates_pushed(login: Callable[[], RawImap]) -> None:
    """With ``selected``, another session's APPEND, flag change and expunge reach the
    selected client as EXISTS, FETCH and EXPUNGE without a command; never a STATUS."""
    c, other = login(), login()
    append(other, "INBOX")
    ok(c.cmd("SELECT INBOX"))
    ok(
        c.cmd(
            "NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))"
            f" (personal {MESSAGE_EVENTS})"
        )
    )
    append(other, "INBOX")
    lines = read_until(c, lambda ls: b"* 2 EXISTS" in ls, timeout=1)
    ok(other.cmd("SELECT INBOX"))
    ok(other.cmd("STORE 1 +FLAGS (\\Flagged)"))
    lines += read_until(c, lambda ls: any(b"FETCH" in x for x in ls), timeout=1)
    ok(other.cmd("STORE 1 +FLAGS (\\Deleted)"))
    ok(other.cmd("EXPUNGE"))
    lines += read_until(c, lambda ls: b"* 1 EXPUNGE" in ls, timeout=1)
    assert _statuses(lines) == [], lines
    assert any(re.match(rb"\* 1 FETCH \(FLAGS \([^)]*\\Flagged", x) for x in lines), lines


def test_selected_delayed_holds_expunges_back(login: Callable[[], RawImap]) -> None:
    """With ``selected-delayed`` new messages are pushed but an expunge waits for a command
    that allows it (RFC 5465 §5.1): the expunge is published before the APPEND, so it was
    held back when the EXISTS arrives; NOOP then reports it."""
    c, other = login(), login()
    append(other, "INBOX")
    append(other, "INBOX")
    ok(c.cmd("SELECT INBOX"))
    ok(c.cmd(f"NOTIFY SET (selected-delayed {MESSAGE_EVENTS})"))
    ok(other.cmd("SELECT INBOX"))
    ok(other.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)"))
    ok(other.cmd("EXPUNGE"))
    append(other, "INBOX")
    lines = read_until(c, lambda ls: any(x.endswith(b" EXISTS") for x in ls), timeout=1)
    assert not any(x.endswith(b"EXPUNGE") for x in lines), lines
    lines = ok(c.cmd("NOOP"))
    assert b"* 1 EXPUNGE" in lines, lines


def test_message_new_fetch_attributes_for_the_selected_mailbox(
    login: Callable[[], RawImap],
) -> None:
    """RFC 5465 §5.2: MessageNew with fetch attributes in the selected group sends, after
    EXISTS, a FETCH of the new message with UID and the attributes asked for."""
    c, other = login(), login()
    ok(c.cmd("SELECT INBOX"))
    ok(
        c.cmd(
            "NOTIFY SET (selected (MessageNew (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])"
            " MessageExpunge))"
        )
    )
    uid = append(other, "INBOX", data=b"Subject: pushed\r\nFrom: a@b\r\n\r\nhi\r\n")
    lines = read_until(c, lambda ls: any(b"FETCH" in x for x in ls), timeout=1)
    assert lines[0] == b"* 1 EXISTS", lines
    fetch_line = next(x for x in lines if b"FETCH" in x)
    assert fetch_line.startswith(b"* 1 FETCH (UID %d FLAGS (" % uid), fetch_line
    assert b"Subject: pushed" in fetch_line
    # PEEK: the message stays unseen.
    assert b"\\Seen" not in ok(c.cmd("FETCH 1 FLAGS"))[0]


def test_subtree_and_subscribed_filters(login: Callable[[], RawImap]) -> None:
    """``subtree Lists`` is Lists and what is below it, not "Listsx"; ``subscribed``
    follows the subscriptions, also one made after NOTIFY SET. Each silent APPEND is
    published before the one that is reported, so its STATUS would have come first."""
    c, other = login(), login()
    for name in ("Lists", "Lists/rust", "Listsx", "Kept", "Other"):
        ok(other.cmd(f"CREATE {name}"))
    ok(c.cmd(f"NOTIFY SET (subtree Lists {MESSAGE_EVENTS}) (subscribed {MESSAGE_EVENTS})"))
    append(other, "Listsx")
    append(other, "Lists/rust")
    lines = read_until(c, _has_status("Lists/rust"), timeout=1)
    append(other, "Lists")
    lines += read_until(c, _has_status("Lists"), timeout=1)
    assert _status_of(lines, "Listsx") is None, lines
    ok(other.cmd("SUBSCRIBE Kept"))
    append(other, "Other")
    append(other, "Kept")
    lines = read_until(c, _has_status("Kept"), timeout=1)
    assert _status_of(lines, "Other") is None, lines


def test_every_status_has_the_same_items(login: Callable[[], RawImap]) -> None:
    """A STATUS for an event carries MESSAGES, UIDNEXT, UIDVALIDITY and UNSEEN like the
    answers to SET STATUS (RFC 5465 §3, §5.2, §5.3), HIGHESTMODSEQ once CONDSTORE is on;
    a mailbox deleted and created again shows its new UIDVALIDITY in the next one."""
    c, other = login(), login()
    ok(other.cmd("CREATE Work"))
    ok(c.cmd(f"NOTIFY SET (personal {MESSAGE_EVENTS})"))
    append(other, "Work")
    first = _status_of(read_until(c, _has_status("Work"), timeout=1), "Work")
    assert first is not None and set(first) == {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"}
    ok(other.cmd("DELETE Work"))
    ok(other.cmd("CREATE Work"))
    ok(c.cmd("ENABLE CONDSTORE"))
    append(other, "Work")
    again = _status_of(read_until(c, _has_status("Work"), timeout=1), "Work")
    assert again is not None and again["UIDVALIDITY"] != first["UIDVALIDITY"]
    assert set(again) == {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"}
    assert (again["MESSAGES"], again["UIDNEXT"]) == (1, 2)


@pytest.mark.parametrize("selected", [f"(selected {MESSAGE_EVENTS})", "(selected NONE)"])
def test_selected_without_flagchange_gets_no_flag_changes(
    login: Callable[[], RawImap], selected: str
) -> None:
    """RFC 5465 §5.1: with a selected group that leaves out FlagChange, another session's
    flag changes are not sent (not pushed, not at the next command), while new messages
    and expunges still are; the client's own STORE is answered as always. After NOTIFY
    NONE the selected mailbox is reported as without NOTIFY: flag changes come again."""
    c, other = login(), login()
    append(other, "INBOX")
    append(other, "INBOX")
    ok(c.cmd("SELECT INBOX"))
    ok(other.cmd("SELECT INBOX"))
    ok(c.cmd(f"NOTIFY SET {selected}"))
    ok(other.cmd("STORE 1 +FLAGS (\\Flagged)"))
    append(other, "INBOX")  # published after the flag change
    if selected.startswith("(selected ("):
        lines = read_until(c, lambda ls: b"* 3 EXISTS" in ls, timeout=1)
    else:  # NONE: nothing is pushed, EXISTS comes at the next command (RFC 9051 §5.2)
        lines = ok(c.cmd("NOOP"))
        assert b"* 3 EXISTS" in lines, lines
    lines += ok(c.cmd("NOOP"))
    assert not any(b"FETCH" in x for x in lines), lines
    own = ok(c.cmd("STORE 2 +FLAGS (\\Answered)"))
    assert any(x.startswith(b"* 2 FETCH (FLAGS (\\Answered") for x in own), own
    ok(other.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)"))
    ok(other.cmd("EXPUNGE"))
    lines = ok(c.cmd("NOOP"))
    assert b"* 2 EXPUNGE" in lines and not any(b"FETCH" in x for x in lines), lines
    ok(c.cmd("NOTIFY NONE"))
    ok(other.cmd("STORE 1 +FLAGS (\\Seen)"))
    lines = ok(c.cmd("NOOP"))
    assert any(x.startswith(b"* 1 FETCH (FLAGS (") and b"\\Seen" in x for x in lines), lines


@pytest.mark.parametrize("idle", [False, True], ids=["between-commands", "in-idle"])
def test_a_client_that_stops_reading_gets_notificationoverflow(
    server_factory: Callable[..., RunningServer], clients: list[RawImap], idle: bool
) -> None:
    """RFC 5465 §5.8: a client that does not take what NOTIFY pushes (here: new messages
    with their bodies), between commands or in IDLE (§4), gets
    ``* OK [NOTIFICATIONOVERFLOW]`` once more than `imap.notify_max_unread` bytes wait
    unread, and from then on the session acts as after NOTIFY NONE: nothing is pushed
    outside IDLE, no STATUS comes, the selected mailbox is reported as without NOTIFY. The
    kernel's socket buffers take a few MB before any byte waits in the server, so the
    other session sends well over that."""
    server = server_factory(imap={"notify_max_unread": 64 * 1024})
    c = RawImap(server.port("imap"), rcvbuf=4096)
    clients.append(c)
    assert ok(c.login("alice@example.test", PASSWORD))
    other = logged_in(server.port("imap"))
    clients.append(other)
    ok(other.cmd("CREATE Work"))
    ok(c.cmd("SELECT INBOX"))
    ok(
        c.cmd(
            "NOTIFY SET (selected (MessageNew (UID BODY.PEEK[]) MessageExpunge))"
            f" (personal {MESSAGE_EVENTS})"
        )
    )
    if idle:
        c.send(b"i1 IDLE\r\n")
        assert c.line().startswith(b"+ ")
    body = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 50
    for _ in range(160):  # 8 MB
        append(other, "INBOX", data=body)
    overflow = b"* OK [NOTIFICATIONOVERFLOW] Too many notifications, NOTIFY is off"
    lines = read_until(c, lambda ls: bool(ls) and ls[-1] == overflow, timeout=60)
    assert any(b"FETCH (UID" in x for x in lines)
    if idle:
        c.send(b"DONE\r\n")
        assert c.until(b"i1")[-1] == b"i1 OK IDLE terminated"
    # NOTIFY is off: another delivery and an APPEND elsewhere are only seen at a command,
    # as EXISTS (no FETCH of the body, no STATUS).
    uid = append(other, "INBOX")
    append(other, "Work")
    lines = ok(c.cmd("NOOP"))
    assert b"* %d EXISTS" % uid in lines, lines
    assert not any(b"FETCH" in x or x.startswith(b"* STATUS") for x in lines), lines
    assert ok(c.cmd("NOTIFY NONE"))
