"""The messages a compose form starts from: the one replied to or forwarded, and drafts.

A message is named, as on the reading page, by folder, UIDVALIDITY and UID, resolved
within the signed-in account only (`AccountMailboxes.find`, then a selection that knows
just that UID), so a hand-edited form reaches at most another message of the same
account. Reading it here never sets ``\\Seen`` (the person is writing, not reading).

The parts a reply or forward needs (the main text, the HTML, the attachments, the
address fields) are taken with the standard library's `email` parser, which is lenient
with broken mail: a part it cannot decode gives its raw text rather than an error.

Drafts live in the account's ``\\Drafts`` special-use mailbox (RFC 6154), made on first
use if the account has none, so that IMAP clients find the webmail's drafts where they
keep their own.

Must not: change a message (the compose routes do, through `SelectedMailbox`).
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.policy import SMTP, default

from pillarbox.message import addresses
from pillarbox.message.compose import Attachment
from pillarbox.message.html_text import html_to_text
from pillarbox.message.parts import walk
from pillarbox.model import Mailbox
from pillarbox.services.fetching import WHOLE_MESSAGE
from pillarbox.services.mailbox import AccountMailboxes, MailboxExists
from pillarbox.services.selected import SelectedMailbox
from pillarbox.web.compose_html import clean_compose_html
from pillarbox.web.filenames import safe_filename

DRAFTS = "\\Drafts"


@dataclass(frozen=True, slots=True)
class Source:
    mailbox: Mailbox
    uid: int
    data: bytes


async def fetch_source(
    mailboxes: AccountMailboxes, folder: str, uidvalidity: int, uid: int
) -> Source | None:
    mailbox = await mailboxes.find(folder)
    if mailbox is None or mailbox.uidvalidity != uidvalidity or not 0 < uid < 2**32:
        return None
    selected = SelectedMailbox.of_messages(mailboxes.store, mailbox, [uid], read_only=True)
    async for batch in selected.fetch([uid], [WHOLE_MESSAGE], set_seen=False):
        for fetched in batch:
            return Source(mailbox, uid, fetched.sections[WHOLE_MESSAGE])
    return None


async def drafts_mailbox(mailboxes: AccountMailboxes) -> Mailbox:
    for mailbox in await mailboxes.list_all():
        if mailbox.special_use == DRAFTS:
            return mailbox
    try:
        return await mailboxes.create("Drafts", DRAFTS)
    except MailboxExists:  # a plain "Drafts" without the special use: use it
        return await mailboxes.get("Drafts")


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # an undecodable field is as good as absent
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def mailboxes_of(message: Message, *names: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name in names:
        for raw in message.get_all(name, []):
            found.extend(addresses(str(raw)))
    return found


def address_text(mailboxes: list[tuple[str, str]]) -> str:
    """Addresses as a person would type them in a To field (parsed back by
    `message.addresses` on send)."""
    out = []
    for name, spec in mailboxes:
        if not name:
            out.append(spec)
        elif any(c in name for c in '",.:;<>@()[]\\'):
            quoted = name.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'"{quoted}" <{spec}>')
        else:
            out.append(f"{name} <{spec}>")
    return ", ".join(out)


def _part_text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def main_text(message: EmailMessage) -> tuple[str, str | None]:
    """The body as plain text, and as cleaned editor markup when it has an HTML part."""
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    html = clean_compose_html(_part_text(rich)) if rich is not None else None
    if plain is not None:
        text = _part_text(plain)
    elif html is not None:
        text = html_to_text(html)
    else:
        text = ""
    return text.replace("\r\n", "\n"), html


def attachments_of(message: EmailMessage, data: bytes) -> list[Attachment]:
    """The message's attachments (`data` is its bytes: a forwarded message inside it is
    taken from them as it is, not as the parser would write it again)."""
    root, _defects = walk(data)
    raw_messages = [
        data[child.b : child.e]
        for child in root.children or []
        if (child.type.lower(), child.subtype.lower()) == ("message", "rfc822")
    ]
    found = []
    for part in message.iter_attachments():
        mime_type = part.get_content_type()
        if mime_type == "message/rfc822":
            inner = part.get_payload(0)
            if raw_messages:
                content = raw_messages.pop(0)
            elif isinstance(inner, Message):
                content = inner.as_bytes(policy=SMTP)
            else:
                content = b""
        else:
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
        name = safe_filename(part.get_filename() or "", mime_type)
        found.append(Attachment(name, mime_type, content))
    return found
