"""When a message is over an account's quota.

An account has two limits (RFC 9208 §5): the bytes of all its messages (STORAGE,
`Store.quota_usage`) and how many messages it holds (MESSAGE), each 0 for none. Both
count every message of every mailbox of the account, \\Deleted ones too until they are
expunged. They are checked when messages are added (delivery, APPEND, COPY, a MOVE
from another account's mailbox), never retroactively: lowering a limit never deletes
mail, it only refuses more. A MOVE inside one account changes neither count and is
never refused.
"""

from __future__ import annotations

NO_QUOTA = 0
MAX_QUOTA = 2**63 - 1  # what a 64-bit database integer holds (SQLite, PostgreSQL bigint)


def check_quota_value(quota_bytes: int) -> int:
    """A quota as an operator may set it: bytes, 0 for none."""
    if quota_bytes < 0:
        raise ValueError("a quota cannot be negative (0 means no quota)")
    if quota_bytes > MAX_QUOTA:
        raise ValueError("a quota cannot be that large (0 means no quota)")
    return quota_bytes


def check_message_limit_value(quota_messages: int) -> int:
    """A message limit as an operator may set it: a count, 0 for none."""
    if quota_messages < 0:
        raise ValueError("a message limit cannot be negative (0 means no limit)")
    if quota_messages > MAX_QUOTA:
        raise ValueError("a message limit cannot be that large (0 means no limit)")
    return quota_messages


def allows(quota_bytes: int, used: int, adding: int) -> bool:
    """May `adding` bytes join an account that uses `used` of `quota_bytes`? Reaching
    the quota exactly is allowed; going past it is not."""
    return quota_bytes == NO_QUOTA or used + adding <= quota_bytes


def allows_messages(quota_messages: int, held: int, adding: int) -> bool:
    """May `adding` messages join an account that holds `held` of at most
    `quota_messages`? Reaching the limit exactly is allowed; going past it is not."""
    return quota_messages == NO_QUOTA or held + adding <= quota_messages


def kibibytes_used(used_bytes: int) -> int:
    """STORAGE usage in units of 1024 octets (RFC 9208 §5.1), rounded up so that an
    account holding anything never shows 0."""
    return -(-used_bytes // 1024)


def kibibytes_limit(quota_bytes: int) -> int:
    """A STORAGE limit in units of 1024 octets (RFC 9208 §5.1), rounded down: the limit
    shown is never more than what is enforced."""
    return quota_bytes // 1024
