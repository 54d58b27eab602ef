"""Where mail for a domain goes: MX lookup (RFC 5321 §5.1), null MX (RFC 7505), and the
check that keeps the queue from being turned against our own network.

Theory of operation: `Router.route(domain)` gives the hops to try in order. With a
smarthost (`[delivery] relay`) that is the relay alone, by name, with no DNS lookup of
ours. Otherwise the domain's MX records by preference (equal preferences shuffled, so
load spreads as RFC 5321 §5.1 asks); no MX at all: the domain itself as the implicit MX
(its A/AAAA). `Router.addresses(hop)` then gives each MX host's addresses, IPv4 first
(a server without an IPv6 route would otherwise wait on every connect), and only those
that pass `is_public` unless `allow_private_networks`: the address checked is the very
one the client connects to (no second lookup in between), so a DNS answer pointing at
127.0.0.1 or 10.x cannot reach internal services.

Failures are `RouteError`s with an RFC 3463 status: NXDOMAIN is permanent (5.1.2), a
null MX is permanent (5.1.10, RFC 7505 §4.2), SERVFAIL and timeouts are temporary
(4.4.3), and so is "every address is private" (4.4.4: the operator may fix the DNS or
the setting).

Must not: decide retries or bounces (`services.outbound` does) or speak SMTP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

_RANDOM = random.SystemRandom()


class RouteError(Exception):
    """No hop to try now; `status` says whether ever (5.x.x) or later (4.x.x)."""

    def __init__(self, text: str, status: str) -> None:
        super().__init__(text)
        self.text = text
        self.status = status

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")


@dataclass(frozen=True, slots=True)
class Hop:
    """A server to try: its host name (for logs, Remote-MTA and TLS SNI) and port."""

    host: str
    port: int
    relay: bool = False  # the configured smarthost: connect by name, no private check


def is_public(address: str) -> bool:
    """May the queue connect to `address`? Only a globally routable one (IANA's special
    registries: not shared CGNAT space either), and never loopback, private, link-local,
    reserved, multicast or unspecified (an IPv4-mapped IPv6 address is judged as its
    IPv4)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def make_resolver(
    nameservers: Sequence[tuple[str, int]], timeout: float
) -> dns.asyncresolver.Resolver:
    """A dnspython resolver asking `nameservers` ((ip, port)), or the system's if empty."""
    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


class Router:
    """Hops and addresses for outbound delivery."""

    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver,
        *,
        port: int,
        allow_private_networks: bool,
        relay: tuple[str, int] | None = None,
    ) -> None:
        self._resolver = resolver
        self.port = port
        self.allow_private = allow_private_networks
        self.relay = relay

    async def route(self, domain: str) -> list[Hop]:
        """The hops for `domain` (canonical, A-label form) in the order to try them."""
        if self.relay is not None:
            return [Hop(self.relay[0], self.relay[1], relay=True)]
        try:
            answer = await self._resolver.resolve(domain, "MX", search=False)
        except dns.resolver.NXDOMAIN:
            raise RouteError(f"domain {domain} does not exist", "5.1.2") from None
        except dns.resolver.NoAnswer:
            return [Hop(domain, self.port)]  # RFC 5321 §5.1: the implicit MX
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise RouteError(
                f"MX lookup for {domain} failed: {_dns_reason(exc)}", "4.4.3"
            ) from None
        records = [(rr.preference, rr.exchange.to_text(omit_final_dot=True)) for rr in answer]
        real = [(pref, host) for pref, host in records if host not in {"", "."}]
        if not real:
            # RFC 7505 §4.2: "0 ." says the domain accepts no mail at all.
            raise RouteError(f"domain {domain} accepts no mail (null MX)", "5.1.10")
        by_pref: dict[int, list[str]] = {}
        for pref, host in real:
            by_pref.setdefault(pref, []).append(host.lower())
        hops: list[Hop] = []
        for pref in sorted(by_pref):
            hosts = by_pref[pref]
            _RANDOM.shuffle(hosts)  # RFC 5321 §5.1: spread load over equal preferences
            hops.extend(Hop(h, self.port) for h in hosts)
        return hops

    async def addresses(self, hop: Hop, *, implicit: bool = False) -> list[str]:
        """The addresses to connect to for `hop`, IPv4 first, private ones left out
        unless allowed. The relay is connected to by name (its address is the
        operator's choice). RouteError when there is none to try."""
        if hop.relay:
            return [hop.host]
        try:
            ipaddress.ip_address(hop.host)
        except ValueError:
            pass
        else:
            found = [hop.host]  # an MX (or test setting) that is an address already
            return self._allowed(hop, found)
        v4, v6 = await asyncio.gather(
            self._lookup(hop.host, "A"), self._lookup(hop.host, "AAAA"), return_exceptions=True
        )
        errors = [r for r in (v4, v6) if isinstance(r, BaseException)]
        found = [a for r in (v4, v6) if not isinstance(r, BaseException) for a in r]
        if not found:
            if errors and not all(isinstance(e, dns.resolver.NXDOMAIN) for e in errors):
                reason = _dns_reason(errors[0])
                raise RouteError(f"address lookup for {hop.host} failed: {reason}", "4.4.3")
            if implicit:
                raise RouteError(f"domain {hop.host} has no MX and no address", "5.1.2")
            raise RouteError(f"MX host {hop.host} has no address", "4.4.3")
        return self._allowed(hop, found)

    def _allowed(self, hop: Hop, found: list[str]) -> list[str]:
        if self.allow_private:
            return found
        public = [a for a in found if is_public(a)]
        if not public:
            raise RouteError(
                f"MX host {hop.host} has only private addresses ({', '.join(found)}); "
                "see delivery.allow_private_networks",
                "4.4.4",
            )
        return public

    async def _lookup(self, host: str, rdtype: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(host, rdtype, search=False)
        except dns.resolver.NoAnswer:
            return []
        return [rr.to_text() for rr in answer]


def _dns_reason(exc: BaseException) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        return "server failure"
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return "no such name"
    return type(exc).__name__
