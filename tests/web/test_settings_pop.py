"""The POP3 download policy in Settings: the options of `pillarbox user pop`.

Pins: the page shows the account's policy as it is; saving "keep" makes a POP3 client's
DELE + QUIT leave the message in the Inbox (seen over IMAP) and hidden from the next
POP3 session, where the default deletes it; "only mail that arrives from now on" hides
what is there from POP3 and shows what comes later; a value that is no option is
refused and changes nothing.
"""

from __future__ import annotations

import poplib
import re

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.web.client import WebClient, append, inbox_count

USER = "alice@example.test"


def message(n: int) -> bytes:
    return f"From: bob@example.test\r\nTo: {USER}\r\nSubject: pop {n}\r\n\r\nbody {n}\r\n".encode()


def pop_session(server: RunningServer) -> poplib.POP3:
    pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    pop.user(USER)
    pop.pass_(PASSWORD)
    return pop


def pop_count(server: RunningServer) -> int:
    pop = pop_session(server)
    try:
        return int(pop.stat()[0])
    finally:
        pop.quit()


def download_and_delete_all(server: RunningServer) -> int:
    pop = pop_session(server)
    count = int(pop.stat()[0])
    for n in range(1, count + 1):
        pop.retr(n)
        pop.dele(n)
    pop.quit()
    return count


def checked(page: str, name: str) -> str:
    found = re.findall(rf'name="{name}" value="([\w-]+)" checked', page)
    assert len(found) == 1, found
    return found[0]


def save(client: WebClient, on_retrieve: str, scope: str) -> int:
    token = client.csrf("/settings")
    data = {"csrf": token, "on_retrieve": on_retrieve, "scope": scope}
    reply = client.post("/settings/pop", data)
    return reply.status_code


def test_keep_leaves_downloaded_mail_in_the_inbox(server: RunningServer, alice: WebClient) -> None:
    page = alice.get("/settings").text
    assert checked(page, "on_retrieve") == "delete" and checked(page, "scope") == "all"
    append(server, USER, message(1))
    append(server, USER, message(2))
    assert save(alice, "keep", "all") == 303
    page = alice.get("/settings?done=pop").text
    assert "POP3 download policy saved." in page
    assert checked(page, "on_retrieve") == "keep" and checked(page, "scope") == "all"
    assert download_and_delete_all(server) == 2
    assert inbox_count(server, USER) == 2  # kept, as the policy says
    assert pop_count(server) == 0  # and not downloaded again
    # Back to the default: what POP3 deletes is gone.
    assert save(alice, "delete", "all") == 303
    append(server, USER, message(3))
    assert download_and_delete_all(server) == 1
    assert inbox_count(server, USER) == 2


def test_from_now_hides_older_mail_from_pop3(server: RunningServer, alice: WebClient) -> None:
    append(server, USER, message(1))
    assert pop_count(server) == 1
    assert save(alice, "delete", "from-now") == 303
    assert checked(alice.get("/settings").text, "scope") == "from-now"
    assert pop_count(server) == 0
    append(server, USER, message(2))
    assert pop_count(server) == 1


def test_an_unknown_option_is_refused(server: RunningServer, alice: WebClient) -> None:
    token = alice.csrf("/settings")
    reply = alice.post("/settings/pop", {"csrf": token, "on_retrieve": "shred", "scope": "all"})
    assert reply.status_code == 400
    assert "Choose one of the options." in reply.text
    assert checked(reply.text, "on_retrieve") == "delete"
    assert alice.post("/settings/pop", {"on_retrieve": "keep", "scope": "all"}).status_code == 403
    assert checked(alice.get("/settings").text, "on_retrieve") == "delete"
