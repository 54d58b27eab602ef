"""SPF (RFC 7208): may this client IP send mail for the MAIL FROM (or HELO) domain?

The evaluation is pyspf's, run in a worker thread; only its DNS is ours. pyspf looks names
up through one method, `query.dns`, which would use a module-global dnspython resolver; the
subclass below overrides that method alone, so the lookups go to the injected `Resolver`
(on the event loop, through `BlockingResolver`) and no global state is changed. The
override keeps what pyspf's own method does besides the lookup: the per-check cache and the
void-lookup limit (RFC 7208 §4.6.4).

Only the MAIL FROM identity is checked, or the HELO identity for the null sender
(RFC 7208 §2.4); the separate HELO check RFC 7208 §2.3 recommends is not done, as DMARC
uses only the MAIL FROM result (RFC 7489 §4.1).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.reversename
import spf

from pillarbox.mailauth.dns import BlockingResolver, DnsTempError, Resolver

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")


@dataclass(frozen=True, slots=True)
class SpfResult:
    """The outcome of one SPF check (RFC 7208 §2.6) and what RFC 8601 reports of it."""

    result: str  # one of RESULTS
    domain: str  # the domain whose policy was checked ("" when there was none)
    identity: str  # "mailfrom", or "helo" for the null sender (RFC 7208 §2.4)
    sender: str  # the identity as checked: MAIL FROM, or postmaster@HELO
    explanation: str


class _Query(spf.query):  # type: ignore[misc]
    """pyspf's query with its DNS lookups sent to our resolver (see the module docstring)."""

    def __init__(self, lookups: BlockingResolver, *args: Any, **kwargs: Any) -> None:
        self._lookups = lookups
        super().__init__(*args, **kwargs)

    def dns(
        self, name: str, qtype: str, cnames: object = None, ignore_void: bool = False
    ) -> list[Any]:
        """Records of `name` in the shapes pyspf's callers expect; raises spf.TempError."""
        name = str(name).rstrip(".").lower()
        if not name or not all(0 < len(label) < 64 for label in name.split(".")):
            return []  # not a valid DNS name: nothing to find (pyspf does the same)
        result: list[Any] = self.cache.get((name, qtype), [])
        if result:
            return result
        try:
            result = self._lookup(name, qtype)
        except DnsTempError as e:
            raise spf.TempError(f"DNS {e}") from e
        if result:
            self.cache[(name, qtype)] = result
        elif not ignore_void:
            # RFC 7208 §4.6.4: more than two lookups with no answer is a permerror
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result

    def _lookup(self, name: str, qtype: str) -> list[Any]:
        if qtype in ("TXT", "SPF"):  # type SPF (99) is obsolete (RFC 7208 §3.1): TXT only
            return [[txt] for txt in self._lookups.txt(name)] if qtype == "TXT" else []
        if qtype == "A":
            return self._lookups.addresses(name, version=4)
        if qtype == "AAAA":
            return self._lookups.addresses(name, version=6)
        if qtype == "MX":
            return self._lookups.mx(name)
        if qtype == "PTR":
            try:
                ip = dns.reversename.to_address(dns.name.from_text(name))
            except (dns.exception.SyntaxError, ValueError):
                return []
            return self._lookups.ptr(ip)
        raise spf.PermError(f"unexpected DNS query type {qtype}")


def _check(
    lookups: BlockingResolver, ip: str, mail_from: str, helo: str, receiver: str
) -> SpfResult:
    identity = "mailfrom" if mail_from else "helo"
    sender = mail_from or (f"postmaster@{helo}" if helo else "")
    try:
        query = _Query(lookups, ip, mail_from, helo, receiver=receiver)
    except spf.PermError as e:  # an unusable client IP
        return SpfResult("permerror", "", identity, sender, str(e))
    domain = str(query.o or "").lower()
    if not domain:
        return SpfResult("none", "", identity, sender, "no domain to check")
    result, _code, explanation = query.check()
    return SpfResult(str(result), domain, identity, query.s, str(explanation))


async def check_spf(
    ip: str, mail_from: str, helo: str, resolver: Resolver, *, receiver: str = "unknown"
) -> SpfResult:
    """Check the SMTP client `ip` against the SPF policy of `mail_from`'s domain.

    `mail_from` is the reverse-path without angle brackets ("" for the null sender, then
    the HELO name is checked as postmaster@HELO, RFC 7208 §2.4); `receiver` is our host
    name for the %{r} macro (RFC 7208 §7.3).
    """
    lookups = BlockingResolver(resolver, asyncio.get_running_loop())
    return await asyncio.to_thread(_check, lookups, ip, mail_from, helo, receiver)
