"""When a message is over an account's quota.

The quota counts the bytes of every message of the account (`Store.quota_usage`). It is
checked when a message is added (delivery, APPEND, COPY to another account's mailbox),
never retroactively: lowering a quota never deletes mail, it only refuses more. A MOVE
inside one account does not change usage and is never refused.
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


def allows(quota_bytes: int, used: int, adding: int) -> bool:
    """May `adding` bytes join an account that uses `used` of `quota_bytes`? Reaching
    the quota exactly is allowed; going past it is not."""
    return quota_bytes == NO_QUOTA or used + adding <= quota_bytes
