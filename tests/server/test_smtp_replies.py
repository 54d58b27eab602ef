"""The SMTP front-end's one table from service errors to replies, pinned byte for byte.

Each service error an SMTP client can meet is produced the way the services produce it
(through the real service where that is cheap), and the exact reply line is pinned: the
basic code comes from the error's class in `server.smtp`, the enhanced status code and
text from the error itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest

from pillarbox.server.smtp import reply_for
from pillarbox.services.delivery import DeliveryService, _translate
from pillarbox.services.errors import OverQuota, Rejected, ServiceError, TempFailure
from pillarbox.services.mailbox import NoSuchMailbox
from pillarbox.services.pop import MaildropInUse
from pillarbox.services.submission import SubmissionService
from pillarbox.store import errors as store_errors
from pillarbox.store.api import Store
from pillarbox.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = SqliteStore(tmp_path / "data")
    await s.open()
    await s.add_domain("example.test")
    await s.add_account("alice@example.test", "not-a-real-hash")
    yield s
    await s.close()


@pytest.fixture
def delivery(store: Store) -> DeliveryService:
    return DeliveryService(store, hostname="mail.example.test")


@pytest.fixture
def submission(store: Store, delivery: DeliveryService) -> SubmissionService:
    return SubmissionService(store, delivery, hostname="mail.example.test")


async def _raised(call: Awaitable[object]) -> bytes:
    with pytest.raises(ServiceError) as info:
        await call
    return reply_for(info.value, "test").to_bytes()


async def test_refused_recipients(delivery: DeliveryService) -> None:
    """RCPT to a non-local domain without relay rights, or to an unknown local user."""
    relay = delivery.resolve("bob@remote.test", relay_allowed=False)
    assert await _raised(relay) == b"550 5.7.1 Relay access denied\r\n"
    unknown = delivery.resolve("nobody@example.test", relay_allowed=False)
    assert await _raised(unknown) == b"550 5.1.1 No such user here\r\n"


async def test_sender_not_owned(store: Store, submission: SubmissionService) -> None:
    """RFC 6409 submission: a sender the account does not own is 553 5.7.1 (RFC 5321
    §4.2.2 "mailbox name not allowed"), in MAIL FROM and in the From: header alike; a
    message without From: is 550 5.6.0."""
    account = await store.get_account("alice@example.test")
    assert account is not None
    not_owned = submission.check_sender(account, "bob@example.test")
    assert (
        await _raised(not_owned)
        == b"553 5.7.1 Sender address not owned by the authenticated user\r\n"
    )
    allowed = await submission.allowed_senders(account)
    with pytest.raises(Rejected) as info:
        submission.fix_header(b"From: bob@example.test\r\n\r\n", allowed)
    assert (
        reply_for(info.value, "test").to_bytes()
        == b"553 5.7.1 From header address not owned by the authenticated user\r\n"
    )
    with pytest.raises(Rejected) as info:
        submission.fix_header(b"Subject: x\r\n\r\n", allowed)
    assert reply_for(info.value, "test").to_bytes() == b"550 5.6.0 Message has no From header\r\n"


@pytest.mark.parametrize(
    ("error", "wire"),
    [
        (OverQuota(), b"552 5.2.2 Mailbox is over quota\r\n"),
        (_translate(store_errors.QuotaExceeded()), b"552 5.2.2 Mailbox is over quota\r\n"),
        (
            _translate(store_errors.StoreUnavailable()),
            b"451 4.3.0 Temporary storage failure, try again later\r\n",
        ),
        (
            _translate(store_errors.NotFound()),
            b"451 4.2.0 Recipient changed during delivery, try again\r\n",
        ),
        (TempFailure("Transaction aborted"), b"451 4.3.0 Transaction aborted\r\n"),
        (TempFailure("Mailbox unavailable", status="4.2.0"), b"451 4.2.0 Mailbox unavailable\r\n"),
        (Rejected("no"), b"550 5.0.0 no\r\n"),
        (NoSuchMailbox("No such mailbox"), b"550 5.0.0 No such mailbox\r\n"),
        (MaildropInUse(), b"451 4.3.0 Maildrop is locked by another POP3 session\r\n"),
    ],
    ids=lambda v: v if isinstance(v, bytes) else type(v).__name__,
)
def test_service_error_replies(error: ServiceError, wire: bytes) -> None:
    """Storage trouble during DATA and the other service errors: the basic code follows
    the error's class (over quota 552, other refusals 550, transient failures 451)."""
    assert reply_for(error, "test").to_bytes() == wire


def test_unmapped_service_error_is_a_logged_local_error(caplog: pytest.LogCaptureFixture) -> None:
    """A service error class the table does not know is a bug, not a reply: it is logged
    with the connection id and answered 451 4.3.0 without its text (fails closed)."""

    class Unmapped(ServiceError):
        pass

    wire = reply_for(Unmapped("internal detail", status="5.1.1"), "conn-7").to_bytes()
    assert wire == b"451 4.3.0 Local error in processing, try again later\r\n"
    assert "conn-7 unexpected error" in caplog.text
