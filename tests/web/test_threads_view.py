"""The conversation view (``/folder?f=INBOX&view=threads``): one row per thread, the
same threads IMAP reports (THREADID, RFC 8474, and THREAD=REFERENCES for mail that
names its parent), newest conversation first, each with its newest message, its count
and an unread mark; opening one lists its messages linking to /read."""

from __future__ import annotations

import re

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, imap_login
from tests.web.listing_helpers import append_many, get_ok, link, listed_uids

ALICE = "alice@example.test"


def _mail(sender: str, subject: str, msgid: str, refs: str = "", date: int = 1) -> bytes:
    head = f"From: {sender}\r\nTo: {ALICE}\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n"
    head += f"Date: Sun, {date:02d} Nov 2026 10:00:00 +0000\r\n"
    if refs:
        head += (
            f"In-Reply-To: <{refs.split()[-1]}>\r\nReferences: "
            + " ".join(f"<{r}>" for r in refs.split())
            + "\r\n"
        )
    return (head + "\r\nhello\r\n").encode()


def _imap_threads(server: RunningServer) -> tuple[dict[int, str], list[set[int]]]:
    """THREADID of every UID, and the THREAD=REFERENCES threads as UID sets."""
    imap = imap_login(server, ALICE)
    try:
        imap.select("INBOX", readonly=True)
        typ, data = imap.uid("FETCH", "1:*", "(THREADID)")
        assert typ == "OK", data
        ids = {}
        for line in data:
            text = line.decode() if isinstance(line, bytes) else str(line)
            match = re.search(r"UID (\d+) THREADID \((\w+)\)|THREADID \((\w+)\) UID (\d+)", text)
            assert match, text
            uid, tid = (match[1], match[2]) if match[1] else (match[4], match[3])
            ids[int(uid)] = tid
        typ, data = imap.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
        assert typ == "OK", data
        raw = (data[0] or b"").decode()
        groups, depth, current = [], 0, set()
        for token in re.findall(r"\(|\)|\d+", raw):
            if token == "(":
                depth += 1
            elif token == ")":
                depth -= 1
                if depth == 0:
                    groups.append(current)
                    current = set()
            else:
                current.add(int(token))
        return ids, groups
    finally:
        imap.logout()


def test_conversations_group_as_imap_does(server: RunningServer, alice: WebClient) -> None:
    append_many(
        server,
        ALICE,
        [
            _mail("Bob <bob@example.test>", "Trip", "t1@x", date=1),
            _mail("carol@other.test", "Solo", "s1@x", date=2),
            _mail("Dora <dora@far.test>", "Re: Trip", "t2@x", "t1@x", date=3),
        ],
        flags="\\Seen",
    )
    append_many(server, ALICE, [_mail("Eve <eve@far.test>", "Re: Trip", "t3@x", "t1@x t2@x", 4)])
    append_many(
        server, ALICE, [_mail("Fay <fay@far.test>", "News", "n1@x", date=5)], flags="\\Seen"
    )
    ids, groups = _imap_threads(server)
    by_thread: dict[str, set[int]] = {}
    for uid, tid in ids.items():
        by_thread.setdefault(tid, set()).add(uid)
    assert sorted(map(sorted, by_thread.values())) == sorted(map(sorted, groups))

    page = get_ok(alice, "/folder?f=INBOX&view=threads")
    rows = re.findall(r'<li class="(unread|read)[^"]*" data-thread="(\d+)">(.*?)</li>', page, re.S)
    assert len(rows) == 3  # News, Trip (3), Solo: newest activity first
    news, trip, solo = rows
    assert "News" in news[2] and "Fay" in news[2] and news[0] == "read"
    assert "Re: Trip" in trip[2] and "Eve" in trip[2] and trip[0] == "unread"
    assert 'class="thread-count" title="messages in this conversation">3<' in trip[2]
    assert "Solo" in solo[2] and "thread-count" not in solo[2]
    assert listed_uids(page) == []  # closed conversations link to themselves, not /read

    opened_url = re.search(r'href="([^"]*t=' + trip[1] + r'[^"]*)"', page)
    assert opened_url
    opened = get_ok(alice, opened_url.group(1).replace("&amp;", "&"))
    trip_uids = by_thread[ids[4]]  # Eve's reply, the fourth message
    assert sorted(listed_uids(opened)) == sorted(trip_uids)
    assert listed_uids(opened) == sorted(trip_uids)  # oldest first inside
    assert 'aria-expanded="true"' in opened
    # the plain list is one toggle away, and the toggle names the view
    assert 'href="/folder?f=INBOX"' in opened and ">Messages<" in opened
    assert ">Conversations<" in get_ok(alice, "/folder?f=INBOX")


def test_conversation_pages(server: RunningServer, alice: WebClient) -> None:
    append_many(
        server, ALICE, [_mail("x@far.test", f"topic {n}", f"m{n}@x", date=1) for n in range(55)]
    )
    append_many(server, ALICE, [_mail("y@far.test", "Re: topic 0", "r@x", "m0@x", date=2)])
    first = get_ok(alice, "/folder?f=INBOX&view=threads")
    assert "Page 1" in first
    assert first.index("Re: topic 0") < first.index("topic 54")  # revived: on top
    second_url = link(first, "next")
    assert second_url is not None and "view=threads" in second_url
    second = get_ok(alice, second_url)
    assert second.count("data-thread=") == 5 and "Page 2" in second
    assert link(second, "next") is None and link(second, "prev") is not None
    # another account's conversations are not there, nor reachable by id
    with WebClient(server) as bob:
        bob.sign_in("bob@example.test")
        theirs = get_ok(bob, "/folder?f=INBOX&view=threads")
        assert "data-thread=" not in theirs and "topic" not in theirs
        tid = re.search(r'data-thread="(\d+)"', first)
        assert tid
        probe = get_ok(bob, f"/folder?f=INBOX&view=threads&t={tid.group(1)}")
        assert "topic" not in probe
