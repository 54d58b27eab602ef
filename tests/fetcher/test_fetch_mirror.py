"""A source that mirrors every folder, and folder names beyond ASCII (modified UTF-7)."""

from __future__ import annotations

import pytest

from pillarbox.fetcher.imap import RemoteFolder
from pillarbox.fetcher.mirror import BadMailboxName, LocalFolder, local_folder
from tests.e2e.conftest import RunningServer
from tests.fetcher.conftest import Local, message, put
from tests.fetcher.test_fetch_imap import rename


async def test_all_folders_are_mirrored_by_name_and_special_use(
    provider: RunningServer, local: Local
) -> None:
    """Every selectable folder comes over into the folder of the same name (made here
    when missing, non-ASCII names included); the provider's Sent folder, whatever its
    name, into our \\Sent folder; Trash and Junk are left; a second run adds nothing."""
    rename(provider, "Sent", "Sent Items")  # keeps its \Sent special use
    put(provider, message(1))
    put(provider, message(2), folder="Lists/Rust")
    put(provider, message(3), folder="Entwürfe Ω")
    put(provider, message(4), folder="Sent Items")
    put(provider, message(5), folder="Trash")
    put(provider, message(6), folder="Junk")
    source = await local.add(provider, "imap", source_folders=["*"])
    report = await local.run(source)
    assert (report.error, report.fetched) == ("", 4)
    assert await local.subjects("INBOX") == ["message 1"]
    assert await local.subjects("Lists/Rust") == ["message 2"]
    assert await local.subjects("Entwürfe Ω") == ["message 3"]
    assert await local.subjects("Sent") == ["message 4"]
    assert await local.store.get_mailbox(local.account.id, "Sent Items") is None
    assert await local.subjects("Trash") == [] and await local.subjects("Junk") == []
    assert (await local.run(source)).fetched == 0
    put(provider, message(7), folder="Lists/Rust")
    assert (await local.run(source)).fetched == 1
    assert await local.subjects("Lists/Rust") == ["message 2", "message 7"]


async def test_a_named_folder_beyond_ascii_is_selected(
    provider: RunningServer, local: Local
) -> None:
    """A source folder named in Unicode is sent in modified UTF-7 (RFC 3501 §5.1.3)."""
    put(provider, message(1), folder="Entwürfe Ω")
    source = await local.add(provider, "imap", source_folders=["Entwürfe Ω"])
    report = await local.run(source)
    assert (report.error, report.fetched) == ("", 1)
    assert await local.subjects() == ["message 1"]


async def test_all_folders_and_named_ones_are_not_both_accepted(
    provider: RunningServer, local: Local
) -> None:
    with pytest.raises(Exception, match="not both"):
        await local.add(provider, "imap", source_folders=["*", "INBOX"])


def _remote(name: str, delimiter: str = "/", *uses: str) -> RemoteFolder:
    return RemoteFolder(name, delimiter, frozenset(u.lower() for u in uses))


def test_local_names() -> None:
    """The mapping of `fetcher.mirror`, for the layouts providers use."""
    assert local_folder(_remote("INBOX"), "INBOX") == LocalFolder("INBOX")
    assert local_folder(_remote("INBOX"), "Work") == LocalFolder("Work")
    assert local_folder(_remote("INBOX.Lists.Rust", "."), "INBOX") == LocalFolder("Lists/Rust")
    assert local_folder(_remote("a/b", "."), "INBOX") == LocalFolder("a-b")
    assert local_folder(_remote("[Gmail]/Sent Mail", "/", "\\Sent"), "INBOX") == LocalFolder(
        "[Gmail]/Sent Mail", "\\Sent"
    )
    assert local_folder(_remote("Sent", "/", "\\Sent"), "Work") == LocalFolder("Work/Sent")
    for use in ("\\Trash", "\\Junk", "\\All", "\\Flagged"):
        assert local_folder(_remote("X", "/", use), "INBOX") is None
    assert local_folder(_remote("Plain", ""), "Work") == LocalFolder("Work/Plain")
    with pytest.raises(BadMailboxName):
        local_folder(_remote("a/../b"), "INBOX")
