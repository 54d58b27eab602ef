"""Object identifiers (RFC 8474): the EMAILID of a message and the MAILBOXID of a mailbox.

Both are derived from store identities that already have the stability RFC 8474 asks for,
so nothing is stored for them:

* EMAILID is the blob id. COPY and MOVE share the blob (the new row points at the same
  blob), so a message keeps its EMAILID across them (RFC 8474 §5.1). Blob ids are random
  63-bit numbers taken with O_EXCL on the file name, so a deleted message's id is not
  handed to a new one.
* MAILBOXID is the mailbox row id. RENAME keeps the row (only INBOX's messages move to a
  new row, and INBOX keeps its id, RFC 8474 §4.2), and the store never hands a deleted
  mailbox's id to a new mailbox.

THREADID is NIL: threads are computed per command (THREAD), not kept per message, and
RFC 8474 §5.2 allows NIL for a server that does not keep them.

Both forms are ``objectid`` (RFC 8474 §7: 1*255 of ALPHA / DIGIT / "_" / "-").
"""

from __future__ import annotations

import re
from typing import Final

_EMAIL_ID: Final = re.compile(r"M([0-9a-f]{16})")


def email_id(blob_id: int) -> str:
    """The EMAILID of every message whose content is this blob."""
    return f"M{blob_id:016x}"


def blob_of_email_id(value: str) -> int | None:
    """The blob an EMAILID names; None when `value` is no EMAILID of ours (it matches no
    message, RFC 8474 §6)."""
    found = _EMAIL_ID.fullmatch(value)
    return None if found is None else int(found.group(1), 16)


def mailbox_object_id(mailbox_id: int) -> str:
    """The MAILBOXID of the mailbox with this store id."""
    return f"F{mailbox_id}"
