"""What the compose tests share: posting the compose form as a browser does (multipart,
with the hidden fields of the page it came from) and looking at mailboxes over IMAP."""

from __future__ import annotations

import email
import html
import imaplib
import re
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.policy import default
from typing import Any

import httpx

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, hidden_fields, imap_login

_OPTION = re.compile(r'<option value="([^"]*)"( selected)?>')
_TEXTAREA = re.compile(r'<textarea name="body"[^>]*>(.*?)</textarea>', re.S)
_INPUT = re.compile(r'<input type="text" name="(\w+)" value="([^"]*)"')


def form_of(page: str) -> dict[str, str]:
    """Every field the compose page would post as it is shown (html.unescape'd)."""
    fields = {k: html.unescape(v) for k, v in hidden_fields(page).items()}
    fields.update({k: html.unescape(v) for k, v in _INPUT.findall(page)})
    body = _TEXTAREA.search(page)
    fields["body"] = html.unescape(body.group(1)) if body else ""
    selected = [value for value, chosen in _OPTION.findall(page) if chosen]
    if selected:
        fields["from"] = html.unescape(selected[0])
    return fields


def sender_options(page: str) -> list[str]:
    return [value for value, _ in _OPTION.findall(page)]


def kept(page: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="keep" value="(\d+)" checked>', page)


def post_compose(
    client: WebClient,
    fields: dict[str, str],
    files: Sequence[tuple[str, bytes, str]] = (),
    keep: Sequence[str] = (),
) -> httpx.Response:
    data: dict[str, Any] = dict(fields)
    if keep:
        data["keep"] = list(keep)
    upload = [("attachments", (name, content, kind)) for name, content, kind in files]
    if not upload:  # an empty file field, as a browser sends it: multipart all the same
        upload = [("attachments", ("", b"", "application/octet-stream"))]
    return client.http.post("/compose", data=data, files=upload)


def messages(server: RunningServer, user: str, mailbox: str) -> list[tuple[bytes, bytes, int]]:
    """(FLAGS item, message bytes, UID) of every message, over IMAP."""
    imap = imap_login(server, user)
    try:
        typ, _ = imap.select(f'"{mailbox}"', readonly=True)
        if typ != "OK":
            return []
        typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        if typ != "OK" or data == [None]:
            return []
        out = []
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))  # type: ignore[union-attr]
                out.append((item[0], item[1], uid))
        return out
    except imaplib.IMAP4.error:
        return []
    finally:
        imap.logout()


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def flags_of(server: RunningServer, user: str, mailbox: str, uid: int) -> str:
    imap = imap_login(server, user)
    try:
        imap.select(f'"{mailbox}"', readonly=True)
        typ, data = imap.uid("FETCH", str(uid), "(FLAGS)")
        assert typ == "OK", data
        return b" ".join(d for d in data if isinstance(d, bytes)).decode()
    finally:
        imap.logout()


def uidvalidity(server: RunningServer, user: str, mailbox: str) -> int:
    imap = imap_login(server, user)
    try:
        typ, data = imap.status(f'"{mailbox}"', "(UIDVALIDITY)")
        assert typ == "OK"
        return int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))  # type: ignore[arg-type,union-attr]
    finally:
        imap.logout()


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def text_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")
