"""Which local folder a source folder's mail goes to when a source mirrors all folders.

A source added with `--all-folders` (stored as the source folder "*", which no IMAP
folder can be: a LIST wildcard) fetches every selectable folder of the account at the
provider, each into a folder of the same name here, so one place holds all of the
user's mail with its filing. Decisions:

- The provider's INBOX goes to the source's target folder (INBOX by default).
- Trash and Junk are not fetched: mail the user threw away or the provider took for
  spam is not mail to consolidate. \\All and \\Flagged (RFC 6154 §2: virtual folders, as
  Gmail's "All Mail" and "Starred") are not fetched either: their messages are in the
  real folders already and would arrive twice.
- Sent, Drafts and Archive (RFC 6154 special use) go to the local folder of the same
  special use when the target is INBOX ("Sent Items" at the provider → "Sent" here).
- Other folders keep their names, the provider's hierarchy delimiter turned into ours
  and a leading "INBOX." level dropped (Courier-style namespaces put every folder below
  INBOX); below the target folder when the target is not INBOX ("Work/Projects").
- A name that is not acceptable here is skipped, with a warning in the run's result.
"""

from __future__ import annotations

from dataclasses import dataclass

from pillarbox.fetcher.imap import RemoteFolder
from pillarbox.rules.mailbox_names import (
    INBOX,
    SEP,
    BadMailboxName,
    is_inbox,
    normalize_mailbox_name,
)

ALL_FOLDERS = "*"
SKIPPED_USES = frozenset({"\\Trash", "\\Junk", "\\All", "\\Flagged"})
FILED_USES = frozenset({"\\Sent", "\\Drafts", "\\Archive"})


@dataclass(frozen=True, slots=True)
class LocalFolder:
    """Where a source folder's mail is stored: a local name, and the special use whose
    local folder takes precedence over that name (None: the name alone)."""

    name: str
    special_use: str | None = None


def mirrors_all(source_folders: tuple[str, ...]) -> bool:
    return ALL_FOLDERS in source_folders


def local_folder(remote: RemoteFolder, target: str) -> LocalFolder | None:
    """The local folder for `remote` (see the module docstring); None: not fetched.
    Raises `BadMailboxName` for a name that cannot be a local folder."""
    if is_inbox(remote.name):
        return LocalFolder(target)
    use = remote.special_use
    if use in SKIPPED_USES:
        return None
    levels = remote.name.split(remote.delimiter) if remote.delimiter else [remote.name]
    if len(levels) > 1 and is_inbox(levels[0]):
        levels = levels[1:]
    # A level may hold our separator when the provider's is another one ("a/b" under
    # "."): it stays one level here.
    name = SEP.join(level.replace(SEP, "-") for level in levels)
    if target != INBOX:
        name = f"{target}{SEP}{name}"
    name = normalize_mailbox_name(name)
    if target == INBOX and use in FILED_USES:
        return LocalFolder(name, use)
    return LocalFolder(name)


__all__ = ["ALL_FOLDERS", "BadMailboxName", "LocalFolder", "local_folder", "mirrors_all"]
