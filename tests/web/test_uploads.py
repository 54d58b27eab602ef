"""Attachments uploaded with the compose form, up to the SMTP size limit.

Pins: files uploaded together (one with a non-ASCII name) arrive byte for byte with
their names, the non-ASCII one written as RFC 2231 ``filename*=utf-8''...``; a hostile
name (path, quotes, CR LF, bidi override) arrives as one plain file name; uploads near
the size limit go through the request cap (web/limits.py) and are sent; a message over
the limit is refused with the limit named and nothing delivered.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient
from tests.web.compose_support import form_of, messages, parse, post_compose


def _fields(client: WebClient, subject: str) -> dict[str, str]:
    fields = form_of(client.get("/compose").text)
    fields.update(to="bob@example.test", subject=subject, body="Files attached.")
    return fields


def test_files_arrive_byte_for_byte(server: RunningServer, alice: WebClient) -> None:
    photo = os.urandom(50_000)
    sheet = "Größe;Preis\r\n1;2\r\n".encode()
    reply = post_compose(
        alice,
        _fields(alice, "Two files"),
        files=[("photo.jpg", photo, "image/jpeg"), ("Übersicht 2026.csv", sheet, "text/csv")],
    )
    assert reply.status_code == 303, reply.text
    raw = messages(server, "bob@example.test", "INBOX")[0][1]
    message = parse(raw)
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)).get_content().strip() == "Files attached."  # type: ignore[union-attr]
    found = {a.get_filename(): a for a in message.iter_attachments()}
    assert set(found) == {"photo.jpg", "Übersicht 2026.csv"}
    assert found["photo.jpg"].get_content_type() == "image/jpeg"
    assert found["photo.jpg"].get_payload(decode=True) == photo
    assert found["Übersicht 2026.csv"].get_payload(decode=True) == sheet
    assert b"filename*=utf-8''%C3%9Cbersicht%202026.csv" in raw  # RFC 2231 §4
    assert "Übersicht".encode() not in raw  # every header byte is ASCII


def test_hostile_file_name_is_made_safe(server: RunningServer, alice: WebClient) -> None:
    name = '../../.bashrc"\r\nX-Evil: 1\u202egpj.exe'
    reply = post_compose(alice, _fields(alice, "Hostile"), files=[(name, b"x", "text/plain")])
    assert reply.status_code == 303, reply.text
    raw = messages(server, "bob@example.test", "INBOX")[0][1]
    assert b"\nX-Evil" not in raw
    (attached,) = list(parse(raw).iter_attachments())
    filename = attached.get_filename()
    assert filename and "/" not in filename and "\\" not in filename and '"' not in filename
    assert "\u202e" not in filename and "\r" not in filename and "\n" not in filename
    assert not filename.startswith(".")


def test_upload_near_the_limit_goes(server_factory: Callable[..., RunningServer]) -> None:
    server = server_factory(smtp={"max_message_size": 300_000})
    with WebClient(server) as alice:
        alice.sign_in("alice@example.test")
        data = os.urandom(200_000)  # about 270 kB once base64-encoded
        reply = post_compose(alice, _fields(alice, "Big"), files=[("big.bin", data, "")])
        assert reply.status_code == 303, reply.text
        (attached,) = list(
            parse(messages(server, "bob@example.test", "INBOX")[0][1]).iter_attachments()
        )
        assert attached.get_payload(decode=True) == data

        too_big = os.urandom(260_000)
        refused = post_compose(alice, _fields(alice, "Too big"), files=[("big.bin", too_big, "")])
        assert refused.status_code == 400
        assert "larger than the limit of 300000 bytes" in refused.text
        assert "Too big" in refused.text  # the form is kept
        assert len(messages(server, "bob@example.test", "INBOX")) == 1

        huge = os.urandom(400_000)  # over the limit before encoding
        refused = post_compose(alice, _fields(alice, "Huge"), files=[("huge.bin", huge, "")])
        assert refused.status_code == 400
        assert "size limit of" in refused.text
        assert len(messages(server, "bob@example.test", "INBOX")) == 1
