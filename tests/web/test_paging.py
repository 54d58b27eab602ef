"""Paging a folder: newest first, 50 a page, "Older"/"Newer" links that name a UID
bound (``before=``/``after=``) and ``?page=N``, both agreeing with IMAP's UID order;
a page or bound past either end shows the nearest page; nonsense numbers are ignored."""

from __future__ import annotations

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient
from tests.web.listing_helpers import append_many, get_ok, imap_uids, link, listed_uids


def test_older_and_newer_links_walk_the_folder(server: RunningServer, alice: WebClient) -> None:
    append_many(
        server,
        "alice@example.test",
        [f"Subject: number {n}\r\n\r\nbody {n}\r\n".encode() for n in range(120)],
    )
    newest_first = list(reversed(imap_uids(server, "alice@example.test", "ALL")))
    assert len(newest_first) == 120

    first = get_ok(alice, "/folder?f=INBOX")
    assert listed_uids(first) == newest_first[:50]
    assert "Page 1 of 3" in first and link(first, "prev") is None
    older = link(first, "next")
    assert older is not None and f"before={newest_first[49]}" in older

    second = get_ok(alice, older)
    assert listed_uids(second) == newest_first[50:100]
    assert "Page 2 of 3" in second
    assert listed_uids(get_ok(alice, "/folder?f=INBOX&page=2")) == newest_first[50:100]

    third_url = link(second, "next")
    assert third_url is not None
    third = get_ok(alice, third_url)
    assert listed_uids(third) == newest_first[100:]
    assert "Page 3 of 3" in third and link(third, "next") is None

    back = link(third, "prev")
    assert back is not None and "after=" in back
    assert listed_uids(get_ok(alice, back)) == newest_first[50:100]
    top = link(second, "prev")
    assert top == "/folder?f=INBOX"  # the page above page 2 is page 1, whole


def test_out_of_range_and_bad_numbers(server: RunningServer, alice: WebClient) -> None:
    append_many(
        server, "alice@example.test", [f"Subject: n{n}\r\n\r\nx\r\n".encode() for n in range(60)]
    )
    newest_first = list(reversed(imap_uids(server, "alice@example.test", "ALL")))
    last = get_ok(alice, "/folder?f=INBOX&page=999")
    assert listed_uids(last) == newest_first[50:] and "Page 2 of 2" in last
    for junk in ("page=-3", "page=x", "before=abc", "after=-1", "before=99999999999999999999"):
        assert listed_uids(get_ok(alice, f"/folder?f=INBOX&{junk}")) == newest_first[:50], junk
    below_all = get_ok(alice, f"/folder?f=INBOX&before={newest_first[-1]}")
    assert listed_uids(below_all) == newest_first[50:]  # nothing older: the last page
    above_all = get_ok(alice, f"/folder?f=INBOX&after={newest_first[0]}")
    assert listed_uids(above_all) == newest_first[:50]


def test_new_mail_does_not_shift_an_older_page(server: RunningServer, alice: WebClient) -> None:
    """A UID-bound page stays the same messages when mail arrives meanwhile (?page=2
    would move by one)."""
    append_many(
        server, "alice@example.test", [f"Subject: n{n}\r\n\r\nx\r\n".encode() for n in range(70)]
    )
    first = get_ok(alice, "/folder?f=INBOX")
    older = link(first, "next")
    assert older is not None
    before = listed_uids(get_ok(alice, older))
    append_many(server, "alice@example.test", [b"Subject: late\r\n\r\nx\r\n"])
    assert listed_uids(get_ok(alice, older)) == before
