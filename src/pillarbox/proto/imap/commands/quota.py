"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT and SETQUOTA.

A quota root is named by an astring; resource names are upper-cased atoms (STORAGE,
MESSAGE, MAILBOX, ANNOTATION-STORAGE or an extension's, RFC 9208 §5), limits are
number64 (63 bits, RFC 9208 §9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pillarbox.proto.imap.commands.base import Command


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    """GETQUOTA quota-root (RFC 9208 §4.1.1)."""

    NAME: ClassVar[str] = "GETQUOTA"
    root: str = ""


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    """GETQUOTAROOT mailbox (RFC 9208 §4.1.2)."""

    NAME: ClassVar[str] = "GETQUOTAROOT"
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    """SETQUOTA quota-root (resource limit ...) (RFC 9208 §4.1.3)."""

    NAME: ClassVar[str] = "SETQUOTA"
    root: str = ""
    limits: tuple[tuple[str, int], ...] = ()
