"""DNS for mail authentication and delivery: the `Resolver` protocol and its dnspython form.

Everything in `mailauth` gets DNS through a `Resolver` it is handed, never through a global
resolver, so tests point it at a DNS server on loopback and `app.py` at `[dns] nameservers`.

Contract of every lookup:
- a name that does not exist (NXDOMAIN) and a name without records of the type (NODATA)
  both give an empty list: SPF (RFC 7208 §4.3, §5), DKIM (RFC 6376 §6.1.2) and DMARC
  (RFC 7489 §6.6.3) treat both as "no record", and a caller that must tell them apart
  (RFC 5321 §5.1 implicit MX) asks for the addresses next;
- a failure that may pass (SERVFAIL, REFUSED, timeout, no server reachable) raises
  `DnsTempError`, which the checks turn into "temperror" and delivery into a retry;
- CNAMEs are followed by the resolver; the answers are the target's records.

`BlockingResolver` gives the same lookups to the synchronous libraries (pyspf) that run in
a worker thread: it hands each lookup back to the event loop that owns the `Resolver`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Coroutine, Sequence
from typing import Any, Literal, Protocol, TypeVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

T = TypeVar("T")

# A lookup waits for the resolver's own timeout; this only stops a worker thread waiting
# forever on a resolver that never returns.
BLOCKING_WAIT = 60.0


class DnsTempError(Exception):
    """A lookup failed in a way that may pass: SERVFAIL, REFUSED, timeout, no server."""


class Resolver(Protocol):
    """The DNS lookups mail authentication and delivery need. Empty list: no such record."""

    async def txt(self, name: str) -> list[bytes]:
        """Each TXT record of `name`, its character-strings joined (RFC 7208 §3.3)."""
        ...

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """(preference, exchange) of each MX record; the exchange without its final dot,
        so a null MX (RFC 7505) is (0, "")."""
        ...

    async def addresses(self, host: str, *, version: Literal[4, 6] | None = None) -> list[str]:
        """The A and AAAA addresses of `host` (only A for version=4, only AAAA for 6)."""
        ...

    async def ptr(self, ip: str) -> list[str]:
        """The names of the reverse-DNS PTR records of `ip`, without final dots."""
        ...


class DnspythonResolver:
    """`Resolver` on dnspython's asyncio resolver.

    `nameservers` as `config.nameservers()` gives them, [(ip, port)]; empty: the system's
    (/etc/resolv.conf). `timeout` bounds each lookup as a whole, retries included. Answers
    are cached for their TTL (`cache_size` entries; 0: no cache, for tests that change
    records between lookups).
    """

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] = (),
        timeout: float = 5.0,
        *,
        cache_size: int = 4096,
    ) -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers
            ]
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = timeout
        self._resolver.timeout = timeout
        if cache_size:
            self._resolver.cache = dns.resolver.LRUCache(cache_size)

    async def _query(self, name: str | dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Any:
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel):
            return []  # a name that cannot be in the DNS does not exist
        except dns.exception.DNSException as e:
            raise DnsTempError(f"{name} {dns.rdatatype.to_text(rdtype)}: {e}") from e
        return list(answer)

    async def txt(self, name: str) -> list[bytes]:
        return [b"".join(r.strings) for r in await self._query(name, dns.rdatatype.TXT)]

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        records = await self._query(domain, dns.rdatatype.MX)
        return [(r.preference, r.exchange.to_text(omit_final_dot=True)) for r in records]

    async def addresses(self, host: str, *, version: Literal[4, 6] | None = None) -> list[str]:
        kinds = {4: [dns.rdatatype.A], 6: [dns.rdatatype.AAAA]}.get(
            version or 0, [dns.rdatatype.A, dns.rdatatype.AAAA]
        )
        found = await asyncio.gather(*(self._query(host, kind) for kind in kinds))
        return [r.address for records in found for r in records]

    async def ptr(self, ip: str) -> list[str]:
        name = dns.reversename.from_address(str(ipaddress.ip_address(ip)))
        records = await self._query(name, dns.rdatatype.PTR)
        return [r.target.to_text(omit_final_dot=True) for r in records]


class BlockingResolver:
    """The lookups of a `Resolver` for code running in a worker thread.

    Each call runs on `loop` (the loop that owns the resolver and its sockets) and the
    thread waits for it. It must never be called on the loop's own thread.
    """

    def __init__(self, resolver: Resolver, loop: asyncio.AbstractEventLoop) -> None:
        self._resolver = resolver
        self._loop = loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(BLOCKING_WAIT)
        except TimeoutError as e:
            future.cancel()
            raise DnsTempError("DNS lookup did not finish") from e

    def txt(self, name: str) -> list[bytes]:
        return self._run(self._resolver.txt(name))

    def mx(self, domain: str) -> list[tuple[int, str]]:
        return self._run(self._resolver.mx(domain))

    def addresses(self, host: str, *, version: Literal[4, 6] | None = None) -> list[str]:
        return self._run(self._resolver.addresses(host, version=version))

    def ptr(self, ip: str) -> list[str]:
        return self._run(self._resolver.ptr(ip))
