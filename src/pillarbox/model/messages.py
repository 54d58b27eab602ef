"""Stored messages: what delivery computes once, what FETCH reads, what writes return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pillarbox.model.flags import FlagRow


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """What `message.parse` computes once from a message so that reading never re-parses.

    `envelope`, `bodystructure` and `body` are ready-to-send IMAP bytes (RFC 9051 §7.5.2).
    `parts` is a JSON document of part byte offsets (see `message.parts`) used to serve
    BODY[section] from a byte range of the message. The store keeps it as given.
    """

    size: int
    envelope: bytes
    bodystructure: bytes
    body: bytes
    parts: str
    subject: str = ""
    from_: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    message_id: str = ""
    sent_date: datetime | None = None  # the Date: header, for SENTBEFORE/SENTON/SENTSINCE
    headers: str = ""  # decoded, unfolded header block, for SEARCH HEADER
    body_text: str = ""  # decoded text of the text parts, for SEARCH BODY/TEXT (full-text)
    preview: str = ""  # first ~200 characters of text (RFC 8970)
    references: str = ""  # msg-ids of the References field, space-separated (RFC 5256 §3)
    in_reply_to: str = ""  # the first msg-id of In-Reply-To, "" if none (RFC 5256 §3 step 1)


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A stored message with everything FETCH can answer without the message bytes."""

    mailbox_id: int
    uid: int
    modseq: int
    flags: frozenset[str]
    internaldate: datetime
    size: int
    envelope: bytes
    bodystructure: bytes
    body: bytes
    parts: str
    preview: str
    blob_id: int
    savedate: datetime | None = None  # RFC 8514: when it was saved in this mailbox (UTC)
    thread_id: int | None = None  # RFC 8474 §5.2 THREADID (`model.objectids`); None: NIL


@dataclass(frozen=True, slots=True)
class AppendResult:
    uid: int
    modseq: int
    uidvalidity: int


@dataclass(frozen=True, slots=True)
class CopyResult:
    """UID map of a COPY or MOVE (RFC 4315 COPYUID), in source-UID order."""

    uidvalidity: int  # of the destination
    source_uids: tuple[int, ...]
    dest_uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StoreFlagsResult:
    changed: tuple[FlagRow, ...]  # rows whose flags changed, with their new MODSEQ
    modified: tuple[int, ...] = ()  # uids refused by UNCHANGEDSINCE (RFC 7162 §3.1.3)
