"""message.dsn: the DSN we compose parses with the standard library into the fields
RFC 3464, RFC 6522 and RFC 3461 §4.3 require."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message

import pytest

from pillarbox.message.dsn import RecipientReport, Report, compose, decode_xtext

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
ORIGINAL = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: bob@remote.test\r\n"
    b"Subject: lunch\r\n"
    b"Message-ID: <orig@example.test>\r\n"
    b"\r\n"
    b"See you at noon.\r\n"
)


def _report(**kw: object) -> Report:
    rcpt = RecipientReport(
        final_recipient="bob@remote.test",
        action="failed",
        status="5.1.1",
        original_recipient="rfc822;Bob@Remote.test",
        remote_mta="mx.remote.test",
        diagnostic="550 5.1.1 No such user",
        last_attempt=NOW,
    )
    values: dict[str, object] = {
        "reporting_mta": "mail.example.test",
        "sender": "alice@example.test",
        "recipients": (rcpt,),
        "arrival_date": NOW - timedelta(hours=1),
        "original": ORIGINAL,
        "envid": "ENV123",
    }
    values.update(kw)
    return Report(**values)  # type: ignore[arg-type]


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects
    return msg


def _status_blocks(msg: EmailMessage) -> list[Message]:
    part = msg.get_payload()[1]  # type: ignore[index]
    blocks = part.get_payload()
    assert isinstance(blocks, list)
    return blocks


def test_failure_report_structure_and_fields() -> None:
    """A failure DSN: multipart/report with delivery-status, three parts, the top-level
    header fields (From MAILER-DAEMON, To the sender, Auto-Submitted, Message-ID, Date) and
    every per-message and per-recipient field."""
    msg = _parse(compose(_report(), now=NOW, message_id="dsn1@mail.example.test"))
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.example.test"
    assert msg["To"].addresses[0].addr_spec == "alice@example.test"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-ID"] == "<dsn1@mail.example.test>"
    assert msg["Date"].datetime == NOW
    assert "Undelivered" in msg["Subject"]
    parts = msg.get_payload()
    assert isinstance(parts, list)
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    text = parts[0].get_content()
    assert "bob@remote.test" in text and "550 5.1.1 No such user" in text
    per_message, per_rcpt = _status_blocks(msg)
    assert per_message["Reporting-MTA"] == "dns; mail.example.test"
    assert per_message["Original-Envelope-Id"] == "ENV123"
    assert email.utils.parsedate_to_datetime(per_message["Arrival-Date"]) == NOW - timedelta(
        hours=1
    )
    assert per_rcpt["Original-Recipient"] == "rfc822;Bob@Remote.test"
    assert per_rcpt["Final-Recipient"] == "rfc822; bob@remote.test"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; mx.remote.test"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"
    assert email.utils.parsedate_to_datetime(per_rcpt["Last-Attempt-Date"]) == NOW
    assert per_rcpt["Will-Retry-Until"] is None
    headers = parts[2].get_payload()
    assert "Subject: lunch" in headers
    assert "See you at noon" not in headers


def test_ret_full_returns_the_whole_message_for_failures_only() -> None:
    """RET=FULL (RFC 3461 §4.3): a failed DSN carries message/rfc822 with the body; a
    delayed one still carries the header only."""
    full = _parse(compose(_report(ret="FULL"), now=NOW))
    returned = full.get_payload()[2]  # type: ignore[index]
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_payload()[0]
    assert inner["Subject"] == "lunch"
    assert "See you at noon." in inner.get_content()

    delayed = RecipientReport(
        "bob@remote.test",
        "delayed",
        "4.4.1",
        last_attempt=NOW,
        will_retry_until=NOW + timedelta(days=4),
    )
    msg = _parse(compose(_report(ret="FULL", recipients=(delayed,)), now=NOW))
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"  # type: ignore[index]
    assert "Delayed" in msg["Subject"]
    _, block = _status_blocks(msg)
    assert block["Action"] == "delayed"
    assert email.utils.parsedate_to_datetime(block["Will-Retry-Until"]) == NOW + timedelta(days=4)
    assert block["Original-Recipient"] is None and block["Remote-MTA"] is None


def test_ret_full_over_the_limit_returns_the_header() -> None:
    """An original larger than the limit comes back as its header, and the text says so."""
    msg = _parse(compose(_report(ret="FULL"), now=NOW, full_limit=10))
    parts = msg.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"  # type: ignore[index]
    assert "too large" in parts[0].get_content()  # type: ignore[index]


def test_no_envid_no_original_envelope_id_and_mixed_actions() -> None:
    """Without ENVID there is no Original-Envelope-Id; several recipients give several
    blocks, and the Subject names the most urgent action."""
    relayed = RecipientReport("carol@other.test", "relayed", "2.0.0", remote_mta="mx.other")
    failed = RecipientReport("bob@remote.test", "failed", "5.0.0")
    msg = _parse(compose(_report(envid=None, recipients=(relayed, failed)), now=NOW))
    per_message, *blocks = _status_blocks(msg)
    assert per_message["Original-Envelope-Id"] is None
    assert [b["Action"] for b in blocks] == ["relayed", "failed"]
    assert "Undelivered" in msg["Subject"]


def test_diagnostic_is_one_line() -> None:
    """A multi-line remote reply cannot break the status block: it becomes one line."""
    rcpt = RecipientReport(
        "bob@remote.test", "failed", "5.7.1", diagnostic="550-5.7.1 first\r\n550 5.7.1 second"
    )
    _, block = _status_blocks(_parse(compose(_report(recipients=(rcpt,)), now=NOW)))
    assert block["Diagnostic-Code"] == "smtp; 550-5.7.1 first 550 5.7.1 second"


def test_utf8_addresses_use_the_global_types() -> None:
    """RFC 6533: a UTF-8 address is reported as utf-8; in message/global-delivery-status."""
    rcpt = RecipientReport("jürgen@bücher.test", "failed", "5.6.7")
    data = compose(_report(recipients=(rcpt,), sender="zoë@example.test"), now=NOW)
    msg = _parse(data)
    parts = msg.get_payload()
    assert parts[1].get_content_type() == "message/global-delivery-status"  # type: ignore[index]
    assert "Final-Recipient: utf-8; jürgen@bücher.test".encode() in data
    assert "To: <zoë@example.test>".encode() in data  # RFC 6532: raw UTF-8 in the header


def test_unknown_action_refused() -> None:
    with pytest.raises(ValueError):
        compose(_report(recipients=(RecipientReport("a@b", "bounced", "5.0.0"),)), now=NOW)


def test_decode_xtext() -> None:
    """RFC 3461 §4: +XX is the octet XX; UTF-8 octets come back as text."""
    assert decode_xtext("rfc822;a+2Bb@example.test") == "rfc822;a+b@example.test"
    assert decode_xtext("id+3Dx") == "id=x"
    assert decode_xtext("utf-8;j+C3+BCrgen@x") == "utf-8;jürgen@x"


def test_only_a_peers_reply_is_an_smtp_diagnostic() -> None:
    """RFC 3464 §2.3.6: Diagnostic-Code type "smtp" means the code a peer issued. Our own
    account of a failure (a refused connection, an expiry) is typed X-Pillarbox, and the
    text does not claim the host "said" it."""
    rcpt = RecipientReport(
        "bob@remote.test",
        "failed",
        "4.4.7",
        remote_mta="mx.remote.test",
        diagnostic="delivery time expired; last error: mx.remote.test[192.0.2.1]:25: "
        "Connection refused",
    )
    msg = _parse(compose(_report(recipients=(rcpt,)), now=NOW))
    _, block = _status_blocks(msg)
    assert block["Diagnostic-Code"] == (
        "X-Pillarbox; delivery time expired; last error: mx.remote.test[192.0.2.1]:25: "
        "Connection refused"
    )
    text = msg.get_payload()[0].get_content()  # type: ignore[index]
    assert "said:" not in text and "    delivery time expired; last error:" in text


def test_our_own_reason_is_not_an_smtp_diagnostic() -> None:
    """RFC 3464 §2.3.6: with no remote reply (no such domain, expiry), the diagnostic is
    ours, typed X-Pillarbox, not "smtp"."""
    rcpt = RecipientReport(
        "bob@gone.test", "failed", "5.1.2", diagnostic="domain gone.test does not exist"
    )
    _, block = _status_blocks(_parse(compose(_report(recipients=(rcpt,)), now=NOW)))
    assert block["Diagnostic-Code"] == "X-Pillarbox; domain gone.test does not exist"
    assert "Remote-MTA" not in block
