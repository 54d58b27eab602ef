"""One entry point for received mail: SPF, DKIM and DMARC, and the Authentication-Results
field that reports them.

The caller (the delivery service) decides what to do: skip mail from trusted networks and
authenticated submission, remove forged fields (`results.remove_own_results`), prepend
`Verdict.header`, and act on `Verdict.action` as `[mailauth]` configures (reject at the end
of DATA, quarantine to Junk, or only record it).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from pillarbox.mailauth.dkim import DkimResult, verify
from pillarbox.mailauth.dmarc import DmarcResult, check_dmarc
from pillarbox.mailauth.dns import Resolver
from pillarbox.mailauth.results import authentication_results
from pillarbox.mailauth.spf import SpfResult, check_spf


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the checks found about one message."""

    spf: SpfResult
    dkim: tuple[DkimResult, ...]
    dmarc: DmarcResult
    header: bytes  # the complete Authentication-Results field, CRLF-terminated
    action: str  # DMARC's: "none", "quarantine" or "reject"


async def check_message(
    message: bytes,
    *,
    client_ip: str,
    helo: str,
    mail_from: str,
    hostname: str,
    resolver: Resolver,
    sample: Callable[[], float] = random.random,
) -> Verdict:
    """Check `message` as received from `client_ip` (HELO `helo`, MAIL FROM `mail_from`
    without brackets, "" for the null sender) by `hostname`, our authserv-id.

    SPF and DKIM run concurrently; DMARC then needs both. `sample` draws DMARC's pct
    sample (RFC 7489 §6.6.4).
    """
    spf, dkim = await asyncio.gather(
        check_spf(client_ip, mail_from, helo, resolver, receiver=hostname),
        verify(message, resolver),
    )
    dmarc = await check_dmarc(message, spf, dkim, resolver, sample=sample)
    header = authentication_results(hostname, spf, dkim, dmarc)
    return Verdict(spf, tuple(dkim), dmarc, header, dmarc.action)
