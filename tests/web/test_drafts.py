"""Drafts: saved to the \\Drafts mailbox, replaced on each save, resumed, deleted on send.

Pins: "Save draft" stores the form as one message in Drafts with \\Draft (seen over
IMAP), Bcc and attachment included; saving again replaces it (still one message, the
new text); an autosave (the editor's fetch) answers JSON with the draft's UID; the
draft's message page offers "Edit draft", and the compose page resumes it with its
fields and attachments; sending it delivers everything and removes the draft; a failed
send keeps the form, says why and keeps the draft (uploaded files included); a resumed
reply still marks its original \\Answered.
"""

from __future__ import annotations

from urllib.parse import urlencode

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, append
from tests.web.compose_support import (
    flags_of,
    form_of,
    kept,
    messages,
    parse,
    post_compose,
    text_of,
    uidvalidity,
)


def _draft_form(alice: WebClient) -> dict[str, str]:
    fields = form_of(alice.get("/compose").text)
    fields.update(
        to="bob@example.test",
        bcc="carol@other.test",
        subject="Half written",
        body="First thoughts",
        action="draft",
    )
    return fields


def test_save_replace_resume_and_send(server: RunningServer, alice: WebClient) -> None:
    fields = _draft_form(alice)
    saved = post_compose(alice, fields, files=[("notes.txt", b"draft notes\n", "text/plain")])
    assert saved.status_code == 200, saved.text
    assert "Draft saved." in saved.text
    drafts = messages(server, "alice@example.test", "Drafts")
    assert len(drafts) == 1
    assert b"\\Draft" in drafts[0][0]
    draft = parse(drafts[0][1])
    assert draft["Bcc"] == "carol@other.test" and draft["Subject"] == "Half written"
    assert [a.get_filename() for a in draft.iter_attachments()] == ["notes.txt"]

    # Saving again replaces the draft; the file is kept from the previous version.
    fields = form_of(saved.text)
    assert fields["draft_uid"] == str(drafts[0][2])
    assert kept(saved.text) == ["0"]
    fields.update(body="Second thoughts", action="draft")
    again = post_compose(alice, fields, keep=kept(saved.text))
    assert again.status_code == 200
    drafts = messages(server, "alice@example.test", "Drafts")
    assert len(drafts) == 1
    assert "Second thoughts" in text_of(parse(drafts[0][1]), "plain")
    uid = drafts[0][2]
    v = uidvalidity(server, "alice@example.test", "Drafts")

    # The draft's page leads back to the compose form, with everything in it.
    page = alice.get("/read?" + urlencode({"f": "Drafts", "v": v, "uid": uid})).text
    edit = "/compose?" + urlencode({"draft": uid, "v": v})
    assert edit.replace("&", "&amp;") in page and "Edit draft" in page
    resumed = alice.get(edit)
    assert resumed.status_code == 200
    fields = form_of(resumed.text)
    assert fields["to"] == "bob@example.test" and fields["bcc"] == "carol@other.test"
    assert fields["subject"] == "Half written"
    assert fields["body"].rstrip("\n") == "Second thoughts"
    assert "notes.txt" in resumed.text and kept(resumed.text) == ["0"]

    fields["action"] = "send"
    sent = post_compose(alice, fields, keep=kept(resumed.text))
    assert sent.status_code == 303, sent.text
    got = parse(messages(server, "bob@example.test", "INBOX")[0][1])
    assert "Bcc" not in got
    (attached,) = list(got.iter_attachments())
    assert attached.get_filename() == "notes.txt" and attached.get_content() == "draft notes\n"
    assert len(messages(server, "carol@other.test", "INBOX")) == 1
    assert messages(server, "alice@example.test", "Drafts") == []


def test_autosave_answers_json(server: RunningServer, alice: WebClient) -> None:
    fields = _draft_form(alice)
    fields.update(autosave="1", format="html", html="<div><b>Bold</b> start</div>")
    first = post_compose(alice, fields)
    assert first.status_code == 200
    result = first.json()
    assert result["ok"] is True and result["attachments"] == []
    fields.update(draft_uid=result["draft_uid"], draft_v=result["draft_v"])
    fields["html"] = "<div><b>Bold</b> start, and more</div>"
    second = post_compose(alice, fields).json()
    assert second["ok"] is True and second["draft_uid"] != result["draft_uid"]
    drafts = messages(server, "alice@example.test", "Drafts")
    assert len(drafts) == 1 and drafts[0][2] == int(second["draft_uid"])
    draft = parse(drafts[0][1])
    assert "<b>Bold</b> start, and more" in text_of(draft, "html")
    # Resumed in the editor: formatted, with the markup
    resumed = alice.get(
        "/compose?" + urlencode({"draft": second["draft_uid"], "v": second["draft_v"]})
    )
    assert "&lt;b&gt;Bold&lt;/b&gt; start, and more" in resumed.text


def test_autosave_without_token_is_refused(server: RunningServer, alice: WebClient) -> None:
    fields = _draft_form(alice)
    fields.update(autosave="1", csrf="wrong")
    assert post_compose(alice, fields).status_code == 403
    assert messages(server, "alice@example.test", "Drafts") == []


def test_failed_send_keeps_form_and_draft(server: RunningServer, alice: WebClient) -> None:
    fields = _draft_form(alice)
    fields.update(to="nobody@example.test", action="send", body="keep me")
    failed = post_compose(alice, fields, files=[("plan.txt", b"the plan", "text/plain")])
    assert failed.status_code == 400
    assert "Not sent:" in failed.text and "kept in Drafts" in failed.text
    assert "keep me</textarea>" in failed.text and "plan.txt" in failed.text
    drafts = messages(server, "alice@example.test", "Drafts")
    assert len(drafts) == 1
    assert [a.get_filename() for a in parse(drafts[0][1]).iter_attachments()] == ["plan.txt"]
    # fixed and sent: the file is still there, and the draft goes
    fields = form_of(failed.text)
    fields.update(to="bob@example.test", action="send")
    assert post_compose(alice, fields, keep=kept(failed.text)).status_code == 303
    got = parse(messages(server, "bob@example.test", "INBOX")[0][1])
    assert [a.get_filename() for a in got.iter_attachments()] == ["plan.txt"]
    assert messages(server, "alice@example.test", "Drafts") == []


def test_resumed_reply_marks_original(server: RunningServer, alice: WebClient) -> None:
    original = (
        b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: Question\r\n"
        b"Message-ID: <q1@example.test>\r\n\r\nWhat time?\r\n"
    )
    uid = append(server, "alice@example.test", original)
    v = uidvalidity(server, "alice@example.test", "INBOX")
    query = urlencode({"mode": "reply", "f": "INBOX", "v": v, "uid": uid})
    fields = form_of(alice.get("/compose?" + query).text)
    fields.update(action="draft", body="Noon.\n" + fields["body"])
    saved = post_compose(alice, fields)
    assert saved.status_code == 200
    draft = messages(server, "alice@example.test", "Drafts")[0]
    resumed = alice.get(
        "/compose?"
        + urlencode({"draft": draft[2], "v": uidvalidity(server, "alice@example.test", "Drafts")})
    )
    fields = form_of(resumed.text)
    assert fields["in_reply_to"] == "<q1@example.test>"
    fields["action"] = "send"
    assert post_compose(alice, fields).status_code == 303
    got = parse(messages(server, "bob@example.test", "INBOX")[0][1])
    assert got["In-Reply-To"] == "<q1@example.test>"
    assert "\\Answered" in flags_of(server, "alice@example.test", "INBOX", uid)
    assert messages(server, "alice@example.test", "Drafts") == []
