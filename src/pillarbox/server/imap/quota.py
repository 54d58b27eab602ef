"""QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, and SETQUOTA refused.

Every mailbox of an account is under one quota root, named "" (the empty string, as in
RFC 9208's examples), which carries the account's limits (`rules.quota`, set by the
administrator with `pillarbox user quota`): STORAGE in units of 1024 octets (§5.1) and
MESSAGE (§5.2). A resource without a limit is not listed, and an account with no limit
at all has no quota root: QUOTAROOT then names none, and GETQUOTA "" answers NO (the
QUOTA response needs at least one resource, §9). Enforcement is the store's (APPEND,
COPY, MOVE and delivery over a limit fail with ``NO [OVERQUOTA]`` / 552 5.2.2); this
module only reports.

SETQUOTA is refused: the limits belong to the administrator, and the server does not
advertise QUOTASET (RFC 9208 §3.1, §4.1.3).

Must not: read the store but through the account's `AccountMailboxes`.
"""

from __future__ import annotations

from pillarbox.model import QuotaUsage
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap import responses
from pillarbox.rules import quota as quota_rules
from pillarbox.server.imap import wire
from pillarbox.server.imap.errors import CommandNo
from pillarbox.server.imap.mailboxes import store_name
from pillarbox.server.imap.session import Session

QUOTA_ROOT = ""  # the one quota root of an account: all its mailboxes


def resources(usage: QuotaUsage) -> list[tuple[str, int, int]]:
    """(resource, usage, limit) for each limited resource (RFC 9208 §5)."""
    out: list[tuple[str, int, int]] = []
    if usage.storage_limit != quota_rules.NO_QUOTA:
        out.append(
            (
                "STORAGE",
                quota_rules.kibibytes_used(usage.storage_used),
                quota_rules.kibibytes_limit(usage.storage_limit),
            )
        )
    if usage.messages_limit != quota_rules.NO_QUOTA:
        out.append(("MESSAGE", usage.messages_used, usage.messages_limit))
    return out


async def getquotaroot(s: Session, cmd: c.GetQuotaRoot) -> bytes:
    # RFC 9208 §4.1.2: QUOTAROOT, then QUOTA for each root.
    mbx = s.require_mailboxes()
    mailbox = await mbx.find(store_name(s, cmd.mailbox))
    if mailbox is None:
        raise CommandNo("No such mailbox", "NONEXISTENT")
    limited = resources(await mbx.quota())
    roots = [QUOTA_ROOT] if limited else []
    s.send(responses.quotaroot(mailbox.name, roots, utf8=s.utf8_names))
    if limited:
        s.send(responses.quota(QUOTA_ROOT, limited))
    return wire.tagged(cmd.tag, "OK", "GETQUOTAROOT completed")


async def getquota(s: Session, cmd: c.GetQuota) -> bytes:
    # RFC 9208 §4.1.1
    limited = resources(await s.require_mailboxes().quota())
    if cmd.root != QUOTA_ROOT or not limited:
        raise CommandNo("No such quota root", "NONEXISTENT")
    s.send(responses.quota(QUOTA_ROOT, limited))
    return wire.tagged(cmd.tag, "OK", "GETQUOTA completed")


async def setquota(s: Session, cmd: c.SetQuota) -> bytes:
    # RFC 9208 §4.1.3: a server may refuse; without QUOTASET it always does.
    s.require_mailboxes()
    raise CommandNo("Quotas are set by the administrator", "NOPERM")
