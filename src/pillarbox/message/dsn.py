"""Delivery status notifications: the message an MTA sends back about a delivery.

Owns composing an RFC 3464 DSN: a multipart/report (RFC 6522) with a human-readable
text part, a message/delivery-status part (one per-message block, one block per
recipient), and the original message's header (text/rfc822-headers) or the whole
original (message/rfc822). When an address or the returned header needs UTF-8, the
RFC 6533 types are used instead (message/global-delivery-status, message/global-headers,
message/global, address type "utf-8"), since the ASCII types may not carry it.

What comes back (RFC 3461 §4.3 RET): the whole message only for a *failed* report whose
sender asked RET=FULL, and only up to `FULL_RETURN_LIMIT` octets; otherwise the header
alone. Without RET we return the header alone: the sender already has the body, a copy
doubles the size of every bounce (and of backscatter when a sender was forged), and the
header is enough to tell which message it was. RFC 3461 §4.3 leaves the choice to us.

A Diagnostic-Code is typed "smtp" only when it is a peer's reply (RFC 3464 §2.3.6: the
code the transport issued); our own account of a failure (a refused connection, a DNS
error, an expiry) is typed X-Pillarbox, as Postfix writes X-Postfix.

Pure: builds bytes from values; it never reads the queue, the clock or the network (the
caller gives `now` and the Message-ID's random part if it wants them fixed).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from pillarbox.message.headers import header_end

FULL_RETURN_LIMIT = 10 * 1024 * 1024  # larger originals come back as their header only
MAX_FIELD = 900  # a status field stays well under the 998-octet line limit (RFC 5322 §2.1.1)

ACTIONS = frozenset({"failed", "delayed", "delivered", "relayed", "expanded"})  # RFC 3464 §2.3.3


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """One recipient's per-recipient block (RFC 3464 §2.3)."""

    final_recipient: str  # the address we tried
    action: str  # one of ACTIONS
    status: str  # RFC 3463 x.y.z
    original_recipient: str | None = None  # the ORCPT value as given ("rfc822;a@b")
    remote_mta: str = ""  # the host that answered, "" if none did
    diagnostic: str = ""  # that host's SMTP reply ("550 5.1.1 No such user"), if any
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None  # for "delayed"


@dataclass(frozen=True, slots=True)
class Report:
    """What a DSN reports: about which message, to whom, and for which recipients."""

    reporting_mta: str  # our host name
    sender: str  # the original envelope sender: the DSN's recipient
    recipients: tuple[RecipientReport, ...]
    arrival_date: datetime
    original: bytes  # the message as queued
    envid: str | None = None  # RFC 3461 §4.4 ENVID
    ret: str | None = None  # RFC 3461 §4.3 "FULL" | "HDRS" | None


_SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "relayed": "Mail relayed: no further delivery reports",
    "expanded": "Mail delivered to a list or alias",
    "delivered": "Successful Mail Delivery Report",
}
_ORDER = ("failed", "delayed", "relayed", "expanded", "delivered")
_EXPLANATIONS = {
    "failed": "could not be delivered to the following recipients; no further attempts "
    "will be made",
    "delayed": "has not yet been delivered to the following recipients; delivery will be retried",
    "relayed": "was passed to a server that does not send delivery reports, so this is "
    "the last report for these recipients",
    "expanded": "was delivered to the following lists or aliases",
    "delivered": "was delivered to the following recipients",
}


_XTEXT_HEX = re.compile(r"\+([0-9A-Fa-f]{2})")
_SMTP_REPLY = re.compile(r"[2-5][0-9][0-9](?:[ -]|$)")  # "550 5.1.1 ...", RFC 5321 §4.2
LOCAL_DIAGNOSTIC_TYPE = "X-Pillarbox"  # our own words, not a peer's reply (Postfix: X-Postfix)


def decode_xtext(value: str) -> str:
    """RFC 3461 §4: "+XX" stands for the octet XX. ENVID and ORCPT travel in SMTP as
    xtext and go into a DSN decoded (RFC 3461 §6.3); invalid UTF-8 becomes U+FFFD."""
    raw = _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), value)
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def subject_action(report: Report) -> str:
    """The action the Subject speaks of: the most urgent one in the report."""
    actions = {r.action for r in report.recipients}
    return next(a for a in _ORDER if a in actions)


def is_smtp_reply(diagnostic: str) -> bool:
    """Is `diagnostic` a reply a peer gave (code first), rather than our own account of a
    failure (a refused connection, an expiry, a DNS error)?"""
    return _SMTP_REPLY.match(diagnostic) is not None


def _needs_utf8(text: str) -> bool:
    return not text.isascii()


def _field_text(value: str) -> str:
    """One line of ASCII: CR/LF and controls become spaces, others '?', length capped."""
    cleaned = "".join(ch if " " <= ch <= "~" else (" " if ch in "\r\n\t" else "?") for ch in value)
    return " ".join(cleaned.split())[:MAX_FIELD]


def _utf8_field(value: str) -> str:
    """One line that may hold UTF-8 (RFC 6533 §3): controls removed, length capped."""
    return " ".join("".join(" " if ch < " " or ch == "\x7f" else ch for ch in value).split())[
        :MAX_FIELD
    ]


def _address_field(address: str, utf8: bool) -> str:
    if _needs_utf8(address) and utf8:
        return f"utf-8; {_utf8_field(address)}"  # RFC 6533 §3
    return f"rfc822; {_field_text(address)}"


def _date(when: datetime) -> str:
    return format_datetime(when)


def _status_block(report: Report, utf8: bool) -> str:
    lines = [f"Reporting-MTA: dns; {_field_text(report.reporting_mta)}"]  # RFC 3464 §2.2
    if report.envid is not None:
        lines.append(f"Original-Envelope-Id: {_field_text(report.envid)}")
    lines.append(f"Arrival-Date: {_date(report.arrival_date)}")
    blocks = ["\r\n".join(lines)]
    for rcpt in report.recipients:
        r: list[str] = []
        if rcpt.original_recipient:  # RFC 3464 §2.3.1: the ORCPT as given
            orcpt = rcpt.original_recipient
            r.append(
                "Original-Recipient: "
                + (_utf8_field(orcpt) if utf8 and _needs_utf8(orcpt) else _field_text(orcpt))
            )
        r.append(f"Final-Recipient: {_address_field(rcpt.final_recipient, utf8)}")
        r.append(f"Action: {rcpt.action}")
        r.append(f"Status: {_field_text(rcpt.status)}")
        if rcpt.remote_mta:
            r.append(f"Remote-MTA: dns; {_field_text(rcpt.remote_mta)}")
        if rcpt.diagnostic:
            # RFC 3464 §2.3.6: the type says whose code this is; "smtp" only for a reply.
            kind = "smtp" if is_smtp_reply(rcpt.diagnostic) else LOCAL_DIAGNOSTIC_TYPE
            diagnostic = _utf8_field if utf8 else _field_text
            r.append(f"Diagnostic-Code: {kind}; {diagnostic(rcpt.diagnostic)}")
        if rcpt.last_attempt is not None:
            r.append(f"Last-Attempt-Date: {_date(rcpt.last_attempt)}")
        if rcpt.will_retry_until is not None:
            r.append(f"Will-Retry-Until: {_date(rcpt.will_retry_until)}")
        blocks.append("\r\n".join(r))
    return "\r\n\r\n".join(blocks) + "\r\n"


def _human_text(report: Report, returned_full: bool, wanted_full: bool) -> str:
    lines = [
        f"This is the mail system at host {report.reporting_mta}.",
        "",
    ]
    by_action: dict[str, list[RecipientReport]] = {}
    for rcpt in report.recipients:
        by_action.setdefault(rcpt.action, []).append(rcpt)
    for action in _ORDER:
        group = by_action.get(action)
        if not group:
            continue
        lines.append(f"Your message {_EXPLANATIONS[action]}:")
        lines.append("")
        for rcpt in group:
            lines.append(f"  <{rcpt.final_recipient}>")
            if rcpt.remote_mta and is_smtp_reply(rcpt.diagnostic):
                lines.append(f"    {rcpt.remote_mta} said: {_utf8_field(rcpt.diagnostic)}")
            elif rcpt.diagnostic:
                lines.append(f"    {_utf8_field(rcpt.diagnostic)}")
            if rcpt.will_retry_until is not None:
                lines.append(f"    Will retry until {_date(rcpt.will_retry_until)}")
        lines.append("")
    if returned_full:
        lines.append("The original message is attached.")
    elif wanted_full:
        lines.append("The original message was too large to return; its header is attached.")
    else:
        lines.append("The header of the original message is attached.")
    return "\r\n".join(lines) + "\r\n"


def _new_boundary(*contents: bytes) -> str:
    while True:
        boundary = f"=_pillarbox_dsn_{secrets.token_hex(12)}"
        token = boundary.encode()
        if not any(token in content for content in contents):
            return boundary


def _cte(data: bytes) -> str:
    return "7bit" if data.isascii() else "8bit"


def compose(
    report: Report,
    *,
    now: datetime,
    message_id: str | None = None,
    full_limit: int = FULL_RETURN_LIMIT,
) -> bytes:
    """The DSN message (CRLF line ends), ready to be delivered or queued with the null
    sender. `message_id` without angle brackets; a random one at the reporting MTA if
    not given."""
    if not report.recipients:
        raise ValueError("a DSN reports on at least one recipient")
    unknown = {r.action for r in report.recipients} - ACTIONS
    if unknown:
        raise ValueError(f"unknown DSN action(s): {sorted(unknown)}")
    action = subject_action(report)
    original = report.original
    header = original[: header_end(original)].rstrip(b"\r\n") + b"\r\n"
    wanted_full = action == "failed" and (report.ret or "").upper() == "FULL"
    returned_full = wanted_full and len(original) <= full_limit

    utf8 = (
        _needs_utf8(report.sender)
        or any(_needs_utf8(r.final_recipient) for r in report.recipients)
        or any(_needs_utf8(r.original_recipient or "") for r in report.recipients)
        or any(_needs_utf8(r.diagnostic) for r in report.recipients)
        or not header.isascii()
    )
    status = _status_block(report, utf8).encode("utf-8")
    text = _human_text(report, returned_full, wanted_full).encode("utf-8")
    returned = original if returned_full else header
    if returned_full:
        returned_type = "message/global" if utf8 and not original.isascii() else "message/rfc822"
    else:
        returned_type = "message/global-headers" if utf8 else "text/rfc822-headers"
    status_type = "message/global-delivery-status" if utf8 else "message/delivery-status"

    boundary = _new_boundary(text, status, returned)
    mid = message_id or f"{secrets.token_hex(16)}@{report.reporting_mta}"
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{report.reporting_mta}>",
        f"To: <{_utf8_field(report.sender)}>",
        f"Subject: {_SUBJECTS[action]}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{mid}>",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5
        "MIME-Version: 1.0",
        # RFC 6522 §3 (multipart/report), RFC 3464 §2 (report-type)
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    if not (text + status + returned).isascii():
        head.append("Content-Transfer-Encoding: 8bit")
    parts = [
        "\r\n".join(head).encode("utf-8") + b"\r\n\r\nThis is a MIME-encapsulated message.\r\n",
        _part(boundary, "text/plain; charset=utf-8", text),
        _part(boundary, status_type, status),
        _part(boundary, returned_type, returned),
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)


def _part(boundary: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"\r\n--{boundary}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Transfer-Encoding: {_cte(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body.rstrip(b"\r\n")
