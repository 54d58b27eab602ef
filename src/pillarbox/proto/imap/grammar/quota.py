"""Parse functions of the QUOTA commands (RFC 9208 §9):

getquota      = "GETQUOTA" SP quota-root-name
getquotaroot  = "GETQUOTAROOT" SP mailbox
setquota      = "SETQUOTA" SP quota-root-name SP setquota-list
setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"
setquota-resource = resource-name SP resource-limit
quota-root-name = astring;  resource-name = atom;  resource-limit = number64
"""

from __future__ import annotations

from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import MAX_MODSEQ, RPAREN, SP
from pillarbox.proto.imap.grammar.reader import CommandParser, Reader


def _parse_getquota(r: Reader, tag: str) -> c.GetQuota:
    r.sp()
    root = r.text(r.astring(), "Quota root")
    r.end()
    return c.GetQuota(tag, root)


def _parse_getquotaroot(r: Reader, tag: str) -> c.GetQuotaRoot:
    r.sp()
    mailbox = r.mailbox()
    r.end()
    return c.GetQuotaRoot(tag, mailbox)


def _parse_setquota(r: Reader, tag: str) -> c.SetQuota:
    r.sp()
    root = r.text(r.astring(), "Quota root")
    r.sp()
    r.open_paren()
    limits: list[tuple[str, int]] = []
    if r.peek() != RPAREN:
        while True:
            name = r.upper_atom("resource name")
            r.sp()
            limits.append((name, r.number(MAX_MODSEQ)))  # number64: 63 bits (RFC 9208 §9)
            if r.peek() != SP:
                break
            r.sp()
    r.close_paren()
    r.end()
    return c.SetQuota(tag, root, tuple(limits))


PARSERS: Final[dict[str, CommandParser]] = {
    "GETQUOTA": _parse_getquota,
    "GETQUOTAROOT": _parse_getquotaroot,
    "SETQUOTA": _parse_setquota,
}
