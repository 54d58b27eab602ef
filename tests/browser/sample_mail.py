"""Mail to look at: a small, believable INBOX for the screenshots and the layout checks,
put there over IMAP APPEND the way any client would, with arrival times spread out."""

from __future__ import annotations

import base64
import imaplib
import re
import time

from tests.e2e.conftest import RunningServer
from tests.web.client import imap_login

HTML_SUBJECT = "Allotment newsletter: the spring planting plan"
ATTACHMENT_NAME = "planting-plan.pdf"

_PLAIN = [
    (
        "Priya Natarajan <priya@other.test>",
        "Lunch on Thursday?",
        "Are you free at one? The"
        " new place on Mill Lane does a good soup and it is close to the office.",
        "\\Seen",
    ),
    (
        "Tom Okafor <tom@other.test>",
        "Re: quarterly figures — a longer subject line that will"
        " not fit on one line of a phone screen",
        "Thanks, I have gone through the numbers and"
        " two rows in the March sheet look swapped. Can you check before the call?",
        "\\Flagged",
    ),
    (
        "GitLab <noreply@other.test>",
        "Pipeline #4821 passed",
        "All 312 jobs passed on main.",
        "\\Seen",
    ),
    (
        "Mum <mum@other.test>",
        "Photos from the weekend",
        "Here are the ones from the beach, the dog is in most of them.",
        "",
    ),
    (
        "Electricity Co <billing@other.test>",
        "Your December statement",
        "Your statement is ready. Amount due: £64.20 on 2 January.",
        "\\Seen \\Flagged",
    ),
]

_HTML = """<!DOCTYPE html><html><body style="font-family: Georgia, serif; color: #222;">
<h1 style="color: #2f6b2f;">Spring planting plan</h1>
<p>Dear plot holders,</p>
<p>The committee has agreed the <strong>spring planting plan</strong>. Beds 1&ndash;12
get potatoes and onions; beds 13&ndash;20 are for brassicas this year.</p>
<ul><li>Seed potatoes arrive on <em>14 March</em></li>
<li>The water troughs are back on from 1 April</li>
<li>Work party: Saturday 10:00, bring gloves</li></ul>
<p>The full plan is attached. See you at the gate!</p>
<p>&mdash; Margaret, Allotment Society</p>
<img src="https://tracker.other.test/open.gif" width="1" height="1" alt="">
</body></html>"""


def _plain(sender: str, to: str, subject: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def html_with_attachment(to: str) -> bytes:
    """multipart/mixed: text and HTML alternatives, and a PDF attached."""
    pdf = base64.encodebytes(b"%PDF-1.4\n% a planting plan\n" + b"0" * 4000).decode()
    return (
        "From: Allotment Society <news@other.test>\r\n"
        f"To: {to}\r\nSubject: {HTML_SUBJECT}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        '--outer\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Spring planting plan: the plan is attached.\r\n"
        "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{_HTML}\r\n--alt--\r\n"
        "--outer\r\nContent-Type: application/pdf\r\n"
        f'Content-Disposition: attachment; filename="{ATTACHMENT_NAME}"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--outer--\r\n"
    ).encode()


def _append(imap: imaplib.IMAP4, message: bytes, flags: str, hours_ago: float) -> int:
    when = imaplib.Time2Internaldate(time.time() - hours_ago * 3600)
    typ, data = imap.append("INBOX", f"({flags})" if flags else "", when, message)
    assert typ == "OK", data
    code = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
    match = re.search(r"APPENDUID \d+ (\d+)", code)
    assert match, code
    return int(match.group(1))


def seed_inbox(server: RunningServer, user: str) -> int:
    """Fill USER's INBOX; returns the UID of the HTML message with the attachment."""
    imap = imap_login(server, user)
    try:
        for age, (sender, subject, body, flags) in enumerate(_PLAIN):
            _append(imap, _plain(sender, user, subject, body), flags, 60 - age * 11)
        return _append(imap, html_with_attachment(user), "", 0.5)
    finally:
        imap.logout()
