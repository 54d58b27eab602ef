"""Identities and signatures in Settings.

Pins: an account always has its own address as an identity (unsaved at first); a name
and a plain-text signature saved on the page are what `services.identities` gives the
compose page (`identities`, `identity_for`, addresses compared in canonical form); an
alias that delivers to the account can be added, an address the account does not own
cannot, and an identity whose alias was removed is no longer offered; a name with a
line break (a header injection) is refused; what was typed is shown escaped; one
account cannot change or remove another's identity.
"""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient

ALICE = "alice@example.test"


def save(client: WebClient, address: str, name: str, signature: str, id_: int = 0) -> Any:
    token = client.csrf("/settings")
    data = {"csrf": token, "id": str(id_), "address": address, "name": name}
    return client.post("/settings/identity", {**data, "signature": signature})


def identities(server: RunningServer, address: str = ALICE) -> list[Any]:
    async def get() -> list[Any]:
        account = await server.services.accounts.get_user(address)
        return list(await server.services.identities.identities(account))

    return server.call(get)


def identity_for(server: RunningServer, wanted: str) -> Any:
    async def get() -> Any:
        account = await server.services.accounts.get_user(ALICE)
        return await server.services.identities.identity_for(account, wanted)

    return server.call(get)


def add_alias(server: RunningServer, source: str, target: str) -> None:
    server.call(lambda: server.services.accounts.add_alias(source, [target]))


def test_own_address_name_and_signature(server: RunningServer, alice: WebClient) -> None:
    page = alice.get("/settings").text
    assert f"<h3>{ALICE}</h3>" in page
    (default,) = identities(server)
    assert (default.id, default.address, default.display_name, default.signature) == (
        0,
        ALICE,
        "",
        "",
    )
    reply = save(alice, ALICE, "  Alice Liddell ", "-- \r\nAlice\r\nWonderland Ltd\r\n\r\n")
    assert reply.status_code == 303
    page = alice.get(reply.headers["location"]).text
    assert "Identity saved." in page
    assert 'value="Alice Liddell"' in page
    assert "Alice\nWonderland Ltd</textarea>" in page
    (stored,) = identities(server)
    assert stored.id > 0 and stored.display_name == "Alice Liddell"
    assert stored.signature == "Alice\nWonderland Ltd"  # no "-- " line: compose adds it
    assert identity_for(server, "ALICE@Example.Test") == stored
    assert identity_for(server, "bob@example.test") is None
    # Saving the stored one again changes it in place.
    assert save(alice, ALICE, "Alice", "A.", stored.id).status_code == 303
    (changed,) = identities(server)
    assert (changed.id, changed.display_name, changed.signature) == (stored.id, "Alice", "A.")


def test_aliases_that_deliver_here_only(server: RunningServer, alice: WebClient) -> None:
    add_alias(server, "info@example.test", ALICE)
    page = alice.get("/settings").text
    assert '<option value="info@example.test">' in page
    assert '<option value="bob@example.test">' not in page
    assert save(alice, "Info@example.test", "Example Info", "").status_code == 303
    assert [i.address for i in identities(server)] == [ALICE, "info@example.test"]
    assert identity_for(server, "info@example.test").display_name == "Example Info"
    refused = save(alice, "bob@example.test", "Not Bob", "")
    assert refused.status_code == 400
    assert "neither your address nor an alias that delivers to you" in refused.text
    assert "bob@example.test" not in [i.address for i in identities(server)]
    assert save(alice, "info@example.test", "Twice", "").status_code == 400
    # The alias goes: compose no longer offers the identity.
    server.call(lambda: server.services.accounts.remove_alias("info@example.test"))
    assert [i.address for i in identities(server)] == [ALICE]
    assert identity_for(server, "info@example.test") is None


def test_names_are_one_line_and_escaped(server: RunningServer, alice: WebClient) -> None:
    injected = save(alice, ALICE, "Alice\r\nBcc: everyone@example.net", "")
    assert injected.status_code == 400
    assert "line breaks or control characters" in injected.text
    assert identities(server)[0].id == 0  # nothing stored
    hostile = '<script>alert(1)</script>"'
    assert save(alice, ALICE, hostile, hostile).status_code == 303
    page = alice.get("/settings").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_another_account_cannot_touch_an_identity(server: RunningServer, alice: WebClient) -> None:
    assert save(alice, ALICE, "Alice", "mine").status_code == 303
    (stored,) = identities(server)
    with WebClient(server) as bob:
        bob.sign_in("bob@example.test")
        # Bob names alice's identity id with his own address, then with hers.
        assert save(bob, "bob@example.test", "Bob", "", stored.id).status_code == 400
        assert save(bob, ALICE, "Mallory", "", stored.id).status_code == 400
        token = bob.csrf("/settings")
        removed = bob.post("/settings/identity/remove", {"csrf": token, "id": str(stored.id)})
        assert removed.status_code == 400
    assert identities(server) == [stored]
    token = alice.csrf("/settings")
    reply = alice.post("/settings/identity/remove", {"csrf": token, "id": str(stored.id)})
    assert reply.status_code == 303
    assert "Identity removed." in alice.get(reply.headers["location"]).text
    assert [i.id for i in identities(server)] == [0]
    assert re.search(r'name="id" value="0"', alice.get("/settings").text)
