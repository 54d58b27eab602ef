"""Which addresses the From chooser of the compose page offers.

The choice is the account's own address and the aliases that deliver to it, exactly the
set `SubmissionService.allowed_senders` accepts (so the page offers nothing the
submission check would refuse, and refuses nothing it offers); catch-all aliases are not
in it (receiving a domain's mail is not speaking for it). The account's own address
comes first, as the default; the others sort by domain and then by local part, so that
one domain's aliases stay together.

Must not: decide what is allowed (services.submission does, and checks again on send).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def sender_choices(
    account_address: str, allowed: Iterable[str], preferred: Sequence[str] = ()
) -> tuple[list[str], str]:
    """The addresses to offer, and the one to select: the first of `preferred` (for a
    reply, the addresses the original was sent to) that is offered, else the account's."""
    others = sorted(
        (a for a in set(allowed) if a != account_address),
        key=lambda a: (a.rpartition("@")[2], a.rpartition("@")[0]),
    )
    choices = [account_address, *others]
    offered = set(choices)
    selected = next((p for p in preferred if p in offered), account_address)
    return choices, selected
