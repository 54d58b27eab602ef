"""CREATE-SPECIAL-USE (RFC 6154 §3) over real sockets.

Pins: CREATE-SPECIAL-USE is advertised; ``CREATE name (USE (\\Junk))`` makes a mailbox
that LIST shows with the attribute (also with the SPECIAL-USE selection option) and
RENAME keeps it; a use another mailbox holds, \\All and \\Flagged (virtual mailboxes the
server does not build), an unknown use and two uses at once are refused with
``NO [USEATTR]`` and create nothing (§3: "MUST NOT create the mailbox").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status


@pytest.fixture
def client(server: RunningServer) -> Iterator[RawImap]:
    c = RawImap(server.port("imap"))
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    yield c
    c.close()


def _listed(c: RawImap, pattern: str) -> list[bytes]:
    lines = c.cmd(f'LIST "" "{pattern}" RETURN (SPECIAL-USE)')
    assert status(lines).startswith(b"OK")
    return lines[:-1]


def test_create_with_a_special_use(client: RawImap) -> None:
    assert b"CREATE-SPECIAL-USE" in client.cmd("CAPABILITY")[0].split()
    assert status(client.cmd("DELETE Junk")).startswith(b"OK")
    created = client.cmd("CREATE Spam (USE (\\Junk))")
    assert status(created).startswith(b"OK [MAILBOXID (")
    assert _listed(client, "Spam") == [b'* LIST (\\HasNoChildren \\Junk) "/" "Spam"']
    special = client.cmd('LIST (SPECIAL-USE) "" "*"')
    assert b'* LIST (\\HasNoChildren \\Junk) "/" "Spam"' in special
    assert status(client.cmd("RENAME Spam Filtered")).startswith(b"OK")
    assert _listed(client, "Filtered") == [b'* LIST (\\HasNoChildren \\Junk) "/" "Filtered"']


@pytest.mark.parametrize(
    "use",
    [
        "\\Sent",  # Sent holds it
        "\\sent",  # the same use, spelled otherwise
        "\\All",
        "\\Flagged",
        "\\Important",
        "\\Drafts \\Archive",
    ],
)
def test_refused_uses_create_nothing(client: RawImap, use: str) -> None:
    assert status(client.cmd(f"CREATE Other (USE ({use}))")).startswith(b"NO [USEATTR]")
    assert _listed(client, "Other") == []
    assert status(client.cmd("CREATE Other")).startswith(b"OK")  # the name was left free
