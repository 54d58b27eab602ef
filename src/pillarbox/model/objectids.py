"""Object identifiers (RFC 8474): the EMAILID and THREADID of a message and the MAILBOXID
of a mailbox.

EMAILID and MAILBOXID are derived from store identities that already have the stability
RFC 8474 asks for, so nothing is stored for them:

* EMAILID is the blob id. COPY and MOVE share the blob (the new row points at the same
  blob), so a message keeps its EMAILID across them (RFC 8474 §5.1). Blob ids are random
  63-bit numbers taken with O_EXCL on the file name, so a deleted message's id is not
  handed to a new one.
* MAILBOXID is the mailbox row id. RENAME keeps the row (only INBOX's messages move to a
  new row, and INBOX keeps its id, RFC 8474 §4.2), and the store never hands a deleted
  mailbox's id to a new mailbox.

THREADID is stored:

* THREADID is kept per message row (RFC 8474 §5.2), decided once when the message is
  stored (delivery, APPEND, REPLACE) inside the store's transaction, by the idea of
  RFC 5256 §2.2 / §3 REFERENCES: `thread_keys` names the Message-IDs that tie a message
  to others; the store keeps, per account, which thread each such Message-ID belongs to
  and takes the thread of the first key it knows (the parent before older ancestors,
  the message's own Message-ID last). A message none of whose keys is known starts a
  thread whose id is its blob id (random, never handed out twice, see above). COPY and
  MOVE copy the row's thread id, like the blob. Threads are never merged afterwards: a
  THREADID, once given, does not change (§5.2), so two threads that a later message
  connects stay two, and that message joins the one its parent is in.

Every form is an ``objectid`` (RFC 8474 §7: 1*255 of ALPHA / DIGIT / "_" / "-").
"""

from __future__ import annotations

import re
from typing import Final

from pillarbox.model.messages import MessageMeta

_EMAIL_ID: Final = re.compile(r"M([0-9a-f]{16})")
_THREAD_ID: Final = re.compile(r"T([0-9a-f]{16})")
# A msg-id as `message.message_ids` reads it (the store gets the decoded field).
_MSG_ID: Final = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
# Enough References for a long thread: the root and the newest ancestors.
MAX_THREAD_KEYS: Final = 32


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


def thread_object_id(thread_id: int) -> str:
    """The THREADID of every message of this thread (RFC 8474 §5.2)."""
    return f"T{thread_id:016x}"


def thread_of_object_id(value: str) -> int | None:
    """The thread a THREADID names; None when `value` is no THREADID of ours (it matches
    no message, RFC 8474 §6)."""
    found = _THREAD_ID.fullmatch(value)
    return None if found is None else int(found.group(1), 16)


def thread_keys(meta: MessageMeta) -> tuple[str, ...]:
    """The Message-IDs that put a message in a thread, most decisive first.

    RFC 5256 §3 step 1: References, or the first In-Reply-To msg-id when References has
    none. Its last entry is the parent, so the order is parent, then the other
    references from newest to oldest (the root last of them), then the message's own
    Message-ID, which a reply stored before it may already have named. At most
    `MAX_THREAD_KEYS`, keeping the root: no message costs the store more than that.
    """
    refs = meta.references.split() or ([meta.in_reply_to] if meta.in_reply_to else [])
    if len(refs) > MAX_THREAD_KEYS - 1:
        refs = [refs[0], *refs[-(MAX_THREAD_KEYS - 2) :]]
    keys = list(dict.fromkeys(reversed(refs)))
    own = _MSG_ID.search(meta.message_id)
    if own is not None and own.group(0) not in keys:
        keys.append(own.group(0))
    return tuple(keys)
