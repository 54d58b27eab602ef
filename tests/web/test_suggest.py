"""Address suggestions (``/suggest?q=prefix``): the senders of the account's received
mail and the recipients of its sent mail, by prefix of the address or of a word of the
name, as ``Name <address>`` (quoted when the name has a comma); never another account's
correspondents, never the account's own address; JSON; sign-in needed."""

from __future__ import annotations

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient
from tests.web.listing_helpers import append_many, smtp_deliver, wait_for_count

ALICE = "alice@example.test"


def _mail(sender: str, to: str, cc: str = "") -> bytes:
    head = f"From: {sender}\r\nTo: {to}\r\n" + (f"Cc: {cc}\r\n" if cc else "")
    return (head + "Subject: hi\r\n\r\nhello\r\n").encode()


def test_suggestions_from_correspondence(server: RunningServer, alice: WebClient) -> None:
    smtp_deliver(server, "bob@example.test", ALICE, _mail("Bob Example <bob@example.test>", ALICE))
    smtp_deliver(server, "carol@other.test", ALICE, _mail('"Doe, Carol" <carol@other.test>', ALICE))
    smtp_deliver(server, "bob@example.test", ALICE, _mail("Bob Example <bob@example.test>", ALICE))
    smtp_deliver(
        server,
        "zed@far.test",
        "bob@example.test",
        _mail("Zed Secret <zed@far.test>", "bob@example.test"),
    )
    wait_for_count(server, ALICE, 3)
    wait_for_count(server, "bob@example.test", 1)
    append_many(
        server,
        ALICE,
        [_mail(ALICE, "Dave Far <dave@far.test>", cc="=?utf-8?q?Ren=C3=A9e?= <renee@far.test>")],
        mailbox="Sent",
    )

    def suggest(client: WebClient, prefix: str) -> list[str]:
        response = client.get("/suggest", params={"q": prefix})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        found = response.json()
        assert isinstance(found, list)
        return found

    assert suggest(alice, "bo") == ["Bob Example <bob@example.test>"]
    assert suggest(alice, "EXAMPLE") == ["Bob Example <bob@example.test>"]  # a name word
    assert suggest(alice, "carol") == ['"Doe, Carol" <carol@other.test>']
    assert suggest(alice, "dave@") == ["Dave Far <dave@far.test>"]  # a recipient of Sent
    assert suggest(alice, "ren") == ["Renée <renee@far.test>"]  # Cc, decoded
    assert suggest(alice, "far.test") == []  # a prefix, not a substring of the address
    assert suggest(alice, "zed") == []  # bob's correspondent
    assert suggest(alice, "alice") == []  # one's own address
    assert suggest(alice, "") == []
    assert set(suggest(alice, "d")) == {
        '"Doe, Carol" <carol@other.test>',
        "Dave Far <dave@far.test>",
    }

    with WebClient(server) as bob:
        bob.sign_in("bob@example.test")
        assert suggest(bob, "zed") == ["Zed Secret <zed@far.test>"]
        assert suggest(bob, "bo") == []
        assert suggest(bob, "carol") == []

    with WebClient(server) as anonymous:
        response = anonymous.get("/suggest", params={"q": "bo"})
        assert response.status_code == 303


def test_compose_page_loads_the_suggestion_script(server: RunningServer, alice: WebClient) -> None:
    page = alice.get("/compose").text
    assert '<script src="/static/suggest.js" defer></script>' in page
    script = alice.get("/static/suggest.js")
    assert script.status_code == 200 and "input[data-suggest]" in script.text
