"""Store exceptions: what can go wrong in persistence, with no protocol wording."""


class StoreError(Exception):
    """Base of every store error."""


class NotFound(StoreError):
    """The named domain, account, mailbox or message does not exist."""


class AlreadyExists(StoreError):
    """Creating something whose name is taken."""


class Conflict(StoreError):
    """The operation is not allowed in the current state (delete INBOX, rename onto itself...)."""


class LimitExceeded(StoreError):
    """A bound on how much of something a mailbox may hold (keywords) would be passed."""


class MailboxKeywordsFull(LimitExceeded):
    """The mailbox holds as many distinct keywords as it may: no new one can be stored."""


class QuotaExceeded(StoreError):
    """Appending would take the account over its quota."""


class StoreUnavailable(StoreError):
    """A transient failure (disk full, database locked too long); the caller may retry later."""
