"""Mailbox-name rules (`rules.mailbox_names`), UIDVALIDITY and quota rules."""

from __future__ import annotations

import pytest

from pillarbox.rules import quota
from pillarbox.rules.mailbox_names import (
    BadMailboxName,
    is_inferior,
    normalize_mailbox_name,
    parent_names,
)
from pillarbox.rules.uidvalidity import MAX_UIDVALIDITY, next_uidvalidity


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("INBOX", "INBOX"),
        ("inbox", "INBOX"),
        ("InBox/Sub", "INBOX/Sub"),
        ("Work/", "Work"),
        ("Über/straße", "Über/straße"),
        ("Sent", "Sent"),  # only INBOX is case-insensitive (RFC 9051 §5.1)
    ],
)
def test_mailbox_name_canonical(given: str, canonical: str) -> None:
    assert normalize_mailbox_name(given) == canonical


@pytest.mark.parametrize(
    "given",
    [
        "",
        "a//b",
        "/a",
        ".",
        "a/../b",
        "a%",
        "b*",
        "a\x00",
        "a\x85b",
        " a",
        "a ",
        "x" * 513,
        "/".join(["a"] * 33),
        "y" * 256,
    ],
)
def test_mailbox_name_refused(given: str) -> None:
    with pytest.raises(BadMailboxName):
        normalize_mailbox_name(given)


def test_hierarchy_helpers() -> None:
    assert parent_names("a/b/c") == ["a", "a/b"]
    assert is_inferior("a/b", "a") and not is_inferior("ab", "a") and not is_inferior("a", "a")


def test_uidvalidity_grows_and_follows_the_clock() -> None:
    """Strictly above the last one, and never below the current time (RFC 9051 §2.3.1.1)."""
    assert next_uidvalidity(0, 1_700_000_000.7) == 1_700_000_000
    assert next_uidvalidity(1_700_000_000, 1_700_000_000.0) == 1_700_000_001
    assert next_uidvalidity(1_800_000_000, 1_700_000_000.0) == 1_800_000_001
    with pytest.raises(OverflowError):
        next_uidvalidity(MAX_UIDVALIDITY, 0)


def test_quota() -> None:
    """0 is no quota; reaching the quota is allowed, passing it is not."""
    assert quota.allows(0, 10**12, 10**9)
    assert quota.allows(100, 60, 40)
    assert not quota.allows(100, 60, 41)
    assert quota.check_quota_value(0) == 0
    with pytest.raises(ValueError):
        quota.check_quota_value(-1)
    assert quota.check_quota_value(quota.MAX_QUOTA) == quota.MAX_QUOTA
    with pytest.raises(ValueError):
        quota.check_quota_value(quota.MAX_QUOTA + 1)
