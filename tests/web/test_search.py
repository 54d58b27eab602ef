"""Search finds what IMAP SEARCH finds, over From, To, Subject and the text.

Mail arrives over SMTP (and APPEND for Sent); every query's results, newest first, are
compared with ``UID SEARCH`` over IMAP with the key the page documents (a plain word is
``OR OR FROM w TO w OR SUBJECT w BODY w``; ``from:``/``to:``/``subject:`` one field;
terms ANDed). Another account's mail never appears; "all folders" adds the others.
"""

from __future__ import annotations

from urllib.parse import urlencode

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient
from tests.web.listing_helpers import (
    append_many,
    get_ok,
    imap_uids,
    link,
    listed_uids,
    smtp_deliver,
    wait_for_count,
)

ALICE = "alice@example.test"


def _mail(sender: str, to: str, subject: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def _word(w: str) -> list[str]:
    return ["OR", "OR", "FROM", w, "TO", w, "OR", "SUBJECT", w, "BODY", w]


def _quoted(value: str) -> str:
    return '"' + value + '"'


def _search(client: WebClient, **params: str) -> str:
    return get_ok(client, "/search?" + urlencode(params))


def test_results_match_imap_search(server: RunningServer, alice: WebClient) -> None:
    mails = [
        ("Bob Example <bob@example.test>", ALICE, "Budget meeting", "numbers for quarterly"),
        ("carol@other.test", ALICE, "Lunch", "the budget is fine, see you at noon"),
        ("Dora <dora@far.test>", ALICE, "Holiday photos", "from the lake, café au lait"),
        ("budget-bot@far.test", ALICE, "Weekly report", "nothing to see"),
        ("carol@other.test", ALICE, "Quarterly numbers", "attached are the figures"),
    ]
    for sender, to, subject, body in mails:
        smtp_deliver(
            server, sender.split("<")[-1].rstrip(">"), to, _mail(sender, to, subject, body)
        )
    smtp_deliver(
        server,
        "eve@far.test",
        "bob@example.test",
        _mail("eve@far.test", "bob@example.test", "budget secret", "budget"),
    )
    wait_for_count(server, ALICE, len(mails))
    wait_for_count(server, "bob@example.test", 1)

    cases: list[tuple[str, list[str]]] = [
        ("budget", _word("budget")),
        ("BUDGET", _word("BUDGET")),
        ("budget quarterly", [*_word("budget"), *_word("quarterly")]),
        ("from:carol", ["FROM", "carol"]),
        ("from:carol numbers", ["FROM", "carol", *_word("numbers")]),
        ("subject:lunch", ["SUBJECT", "lunch"]),
        ("to:alice@example.test", ["TO", "alice@example.test"]),
        ('"at noon"', _word(_quoted("at noon"))),
        ("lait", _word("lait")),
        ("nowhere-to-be-found", _word("nowhere-to-be-found")),
    ]
    for query, criteria in cases:
        expected = list(reversed(imap_uids(server, ALICE, *criteria)))
        page = _search(alice, q=query, f="INBOX")
        assert listed_uids(page) == expected, query
        count = len(expected)
        assert f"{count} {'message' if count == 1 else 'messages'} found" in page, query
    # the spot checks a person would make
    budget = _search(alice, q="budget", f="INBOX")
    assert "Budget meeting" in budget and "Lunch" in budget and "Weekly report" in budget
    assert "Holiday photos" not in budget and "budget secret" not in budget  # bob's
    assert 'href="/read?f=INBOX&amp;v=' in budget
    accented = _search(alice, q="CAFÉ", f="INBOX")  # non-ASCII, any case
    assert "Holiday photos" in accented and "1 message found" in accented


def test_other_accounts_and_all_folders(server: RunningServer, alice: WebClient) -> None:
    append_many(
        server, ALICE, [_mail(ALICE, "zed@far.test", "zebra plans", "sent by me")], mailbox="Sent"
    )
    append_many(server, ALICE, [_mail("zed@far.test", ALICE, "zebra reply", "ok")])
    append_many(
        server,
        "bob@example.test",
        [_mail("zed@far.test", "bob@example.test", "zebra for bob", "zebra")],
    )
    inbox_only = _search(alice, q="zebra", f="INBOX")
    assert "zebra reply" in inbox_only and "zebra plans" not in inbox_only
    everywhere = _search(alice, q="zebra", f="INBOX", all="1")
    assert "zebra reply" in everywhere and "zebra plans" in everywhere
    assert (
        'href="/read?f=Sent&amp;' in everywhere
        and '<span class="in-folder">Sent</span>' in everywhere
    )
    assert "zebra for bob" not in everywhere
    assert "2 messages found" in everywhere
    # another account's session finds its own only
    with WebClient(server) as bob:
        bob.sign_in("bob@example.test")
        theirs = _search(bob, q="zebra", f="INBOX", all="1")
        assert "zebra for bob" in theirs and "zebra reply" not in theirs
    # a folder the account lacks is 404, not someone else's
    assert alice.get("/search?" + urlencode({"q": "zebra", "f": "Nope"})).status_code == 404


def test_paging_and_empty_query(server: RunningServer, alice: WebClient) -> None:
    append_many(
        server, ALICE, [_mail("x@far.test", ALICE, f"item {n}", "common words") for n in range(60)]
    )
    append_many(server, ALICE, [_mail("x@far.test", ALICE, "other", "unrelated")])
    expected = list(reversed(imap_uids(server, ALICE, *_word("common"))))
    first = _search(alice, q="common", f="INBOX")
    assert "60 messages found" in first and listed_uids(first) == expected[:50]
    older = link(first, "next")
    assert older is not None
    assert listed_uids(get_ok(alice, older)) == expected[50:]
    empty = _search(alice, q="   ", f="INBOX")
    assert listed_uids(empty) == [] and "found" not in empty
    signed_out = WebClient(server)
    with signed_out:
        response = signed_out.get("/search?q=common")
        assert response.status_code == 303 and "/signin" in response.headers["location"]
