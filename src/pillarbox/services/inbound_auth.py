"""What we make of mail other servers deliver to us: SPF, DKIM and DMARC, applied.

`mailauth.check_message` computes the results; this service decides, from `[mailauth]`,
which clients are checked (not those in `trusted_networks`: an MTA or filter of our own
in front), what a DMARC failure costs (`p=reject` → 550 5.7.1 at the end of DATA when
`dmarc_reject`; `p=quarantine` → the Junk mailbox when `dmarc_quarantine`; otherwise the
result is only recorded), and removes any Authentication-Results field that claims our
host name before the message is stored (RFC 8601 §5: a receiver must not trust fields
it did not add, and a forged "dmarc=pass" for our authserv-id would be believed by the
user's filters). The header field it returns goes at the top of every stored copy.

Must not: speak SMTP (refusals are `Rejected` with an RFC 3463 status), or store anything.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pillarbox.mailauth.check import check_message
from pillarbox.mailauth.dns import Resolver
from pillarbox.mailauth.results import remove_own_results
from pillarbox.services.errors import Rejected

log = logging.getLogger("pillarbox.mailauth")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class InboundVerdict:
    header: bytes  # the Authentication-Results field to prepend, CRLF-terminated
    quarantine: bool  # deliver to Junk instead of INBOX


class InboundAuth:
    def __init__(
        self,
        resolver: Resolver,
        hostname: str,
        *,
        enabled: bool = True,
        dmarc_reject: bool = True,
        dmarc_quarantine: bool = True,
        trusted_networks: Sequence[str] = (),
    ) -> None:
        self.resolver = resolver
        self.hostname = hostname
        self.enabled = enabled
        self.dmarc_reject = dmarc_reject
        self.dmarc_quarantine = dmarc_quarantine
        self._trusted: list[IpNetwork] = [
            ipaddress.ip_network(n, strict=False) for n in trusted_networks
        ]

    def applies_to(self, client_ip: str) -> bool:
        """Is mail from `client_ip` checked? Not when disabled or from a trusted network."""
        if not self.enabled:
            return False
        try:
            ip = ipaddress.ip_address(client_ip)
        except ValueError:
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return not any(ip in net for net in self._trusted)

    def strip_forged(self, head: bytes) -> bytes:
        """`head` (the header block, and perhaps the start of the body) without the
        Authentication-Results fields that claim our host name (RFC 8601 §5)."""
        return remove_own_results(head, self.hostname)

    async def check(
        self, message: bytes, *, client_ip: str, helo: str, sender: str
    ) -> InboundVerdict:
        """Check `message` as received; `Rejected` (5.7.1) when its domain's DMARC policy
        says reject and we honour it (RFC 7489 §6.6.4, §7.3)."""
        verdict = await check_message(
            message,
            client_ip=client_ip,
            helo=helo,
            mail_from=sender,
            hostname=self.hostname,
            resolver=self.resolver,
        )
        dmarc = verdict.dmarc
        if verdict.action == "reject" and self.dmarc_reject:
            log.info(
                "refused mail from %s (From: %s): DMARC %s, policy reject",
                client_ip,
                dmarc.from_domain,
                dmarc.result,
            )
            raise Rejected(
                f"Message refused: DMARC policy of {dmarc.from_domain} says reject",
                status="5.7.1",
            )
        return InboundVerdict(
            verdict.header, quarantine=verdict.action == "quarantine" and self.dmarc_quarantine
        )
