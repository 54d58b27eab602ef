"""Service exceptions; each front-end maps them to its own replies in one table.

`Rejected` is permanent (SMTP 5xx, IMAP NO, POP3 -ERR), `TempFailure` is transient
(SMTP 4xx, IMAP NO [UNAVAILABLE]). `status` is the RFC 3463 enhanced status code and
`smtp_code` the basic SMTP reply code, so the SMTP front-end need not guess.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of service errors; the message is safe to show to the client."""

    def __init__(self, text: str, *, status: str = "5.0.0", smtp_code: int = 550) -> None:
        super().__init__(text)
        self.text = text
        self.status = status
        self.smtp_code = smtp_code


class Rejected(ServiceError):
    """A permanent refusal."""


class TempFailure(ServiceError):
    """A transient failure; the client may try again later."""

    def __init__(self, text: str, *, status: str = "4.3.0", smtp_code: int = 451) -> None:
        super().__init__(text, status=status, smtp_code=smtp_code)


class OverQuota(Rejected):
    def __init__(self, text: str = "Mailbox is over quota") -> None:
        super().__init__(text, status="5.2.2", smtp_code=552)


class AuthFailed(Exception):
    """Wrong user or password; deliberately says nothing about which."""


class AccountError(Exception):
    """A bad account-management request (unknown domain, duplicate user, weak password)."""
