"""A small authoritative DNS server for tests, on loopback, serving records from a dict.

Why: SPF, DKIM, DMARC and MX resolution must be tested against real DNS traffic (UDP with
truncation, TCP, NXDOMAIN versus NODATA, SERVFAIL, timeouts), not against mocked answers.
The server runs dnslib's UDP and TCP servers on one port in background threads, so a test
(or two Pillarbox servers in an end-to-end test) points `[dns] nameservers` at it.

Usage::

    with DnsServer() as dns:                       # or the `dns_server` fixture
        dns.add("example.test", "MX", "10 mx.example.test.")
        dns.add("mx.example.test", "A", "127.0.0.2")
        dns.add("example.test", "TXT", "v=spf1 mx -all")
        dns.set("example.test", "TXT", "v=spf1 -all")    # replaces every TXT record
        dns.fail("broken.test")                          # SERVFAIL
        dns.drop("slow.test")                            # no answer at all: a timeout
        dns.load_zone(dns_records("example.test", "mx.example.test", keys))
        config_value = [dns.nameserver]                  # "127.0.0.1:PORT"

Records are given in zone-file text (relative names are not allowed; a trailing dot on a
target is optional), and names are case-insensitive. A name with no record of the asked
type but with records of other types answers NODATA (NOERROR, empty answer); an unknown
name answers NXDOMAIN. A CNAME is answered with the records of its target when the target
is in the data, as an authoritative server (or a recursive resolver) does. TXT values
longer than 255 bytes are split into 255-byte character-strings (RFC 7208 §3.3); a TXT
value given as a list is served as exactly those strings. UDP answers over 512 bytes are
truncated (TC bit), so clients retry over TCP, as with real servers without EDNS.

The data may be changed at any time while the server runs; changes apply to the next query.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import dns.rdatatype
import dns.zone
from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SRV, TXT, A, DNSRecord
from dnslib.server import DNSError, DNSHandler, DNSServer

TYPES = ("A", "AAAA", "CNAME", "MX", "PTR", "SRV", "TXT")


def _name(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _rdata(rtype: str, value: str | Sequence[str]) -> Any:
    """One record's data from its zone-file text ('10 mx.example.test.', '127.0.0.1', ...)."""
    if rtype == "TXT":
        if isinstance(value, str):
            raw = value.encode()
            chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
        else:
            chunks = [s.encode() for s in value]
        return TXT(chunks)
    assert isinstance(value, str), f"{rtype} takes one string"
    fields = value.split()
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    if rtype == "CNAME":
        return CNAME(_name(value))
    if rtype == "PTR":
        return PTR(_name(value))
    if rtype == "MX":
        return MX(_name(fields[1]), int(fields[0]))
    if rtype == "SRV":
        priority, weight, port, target = fields
        return SRV(int(priority), int(weight), int(port), _name(target))
    raise ValueError(f"unsupported record type {rtype}")


class _Handler(DNSHandler):
    """dnslib's handler, truncating UDP answers over 512 bytes (RFC 1035 §4.2.1; no EDNS
    here) as servers do: TC set, the question kept (dnslib's own truncation drops it,
    which resolvers reject)."""

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed: bytes = reply.pack()
        if self.protocol == "udp" and len(packed) > 512:
            truncated = reply.truncate()
            truncated.add_question(request.q)
            packed = truncated.pack()
        return packed


class _QuietLogger:
    """dnslib prints every query by default; tests keep only the errors, in a list."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def log_error(self, handler: object, e: object) -> None:
        self.errors.append(str(e))

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


class DnsServer:
    """An authoritative DNS server on `host` (UDP and TCP, same port) serving `records`.

    `records` maps a name to (type, value) pairs, e.g.
    ``{"example.test": [("MX", "10 mx.example.test."), ("TXT", "v=spf1 mx -all")]}``.
    `port=0` picks a free port; `nameserver` and `address` say which one.
    """

    def __init__(
        self,
        records: dict[str, Iterable[tuple[str, str | Sequence[str]]]] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ttl: int = 60,
    ) -> None:
        self.host = host
        self.ttl = ttl
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, list[Any]]] = {}
        self._failing: dict[str, int] = {}
        self._dropped: set[str] = set()
        self.queries: list[tuple[str, str]] = []  # (name, type) of every query, in order
        for name, pairs in (records or {}).items():
            for rtype, value in pairs:
                self.add(name, rtype, value)
        self._logger = _QuietLogger()
        self._servers: list[DNSServer] = []
        self._bind(port)

    # -- the data ---------------------------------------------------------------------

    def add(self, name: str, rtype: str, value: str | Sequence[str]) -> None:
        """Add one record (`value` in zone-file text; TXT may be a list of strings)."""
        rtype = rtype.upper()
        if rtype not in TYPES:
            raise ValueError(f"unsupported record type {rtype}")
        with self._lock:
            self._data.setdefault(_name(name), {}).setdefault(rtype, []).append(
                _rdata(rtype, value)
            )

    def set(self, name: str, rtype: str, *values: str | Sequence[str]) -> None:
        """Replace every `rtype` record of `name` by `values` (none: remove them)."""
        self.remove(name, rtype)
        for value in values:
            self.add(name, rtype, value)

    def remove(self, name: str, rtype: str | None = None) -> None:
        """Remove the `rtype` records of `name`, or the whole name (then NXDOMAIN)."""
        with self._lock:
            if rtype is None:
                self._data.pop(_name(name), None)
            else:
                self._data.get(_name(name), {}).pop(rtype.upper(), None)

    def load_zone(self, text: str) -> None:
        """Add every record of a zone-file fragment with absolute names, such as the output
        of `pillarbox dns` (`mailauth.zone.dns_records`); types outside TYPES are skipped."""
        zone = dns.zone.from_text(text, check_origin=False, relativize=False)
        for name, rdataset in zone.iterate_rdatasets():
            rtype = dns.rdatatype.to_text(rdataset.rdtype)
            if rtype not in TYPES:
                continue
            for rdata in rdataset:
                if rtype == "TXT":
                    self.add(name.to_text(), rtype, [s.decode() for s in rdata.strings])
                else:
                    self.add(name.to_text(), rtype, rdata.to_text())

    def fail(self, name: str, rcode: str = "SERVFAIL") -> None:
        """Answer every query for `name` with `rcode` (SERVFAIL, REFUSED) until `heal`."""
        with self._lock:
            self._failing[_name(name)] = getattr(RCODE, rcode)

    def drop(self, name: str) -> None:
        """Never answer queries for `name`, so the client times out, until `heal`."""
        with self._lock:
            self._dropped.add(_name(name))

    def heal(self, name: str) -> None:
        """Undo `fail` and `drop` for `name`."""
        with self._lock:
            self._failing.pop(_name(name), None)
            self._dropped.discard(_name(name))

    # -- the server -------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """(ip, port), the form `config.nameservers` returns."""
        return self.host, self.port

    @property
    def nameserver(self) -> str:
        """ "ip:port", the form `[dns] nameservers` takes."""
        return f"{self.host}:{self.port}"

    @property
    def errors(self) -> list[str]:
        """Errors the server met (malformed queries), for assertions."""
        return self._logger.errors

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        """dnslib's resolver hook: answer `request` from the data."""
        reply = request.reply()
        reply.header.aa = 1
        qname = _name(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((qname.rstrip("."), qtype))
            if qname in self._dropped:
                raise DNSError("dropped on purpose")
            if qname in self._failing:
                reply.header.rcode = self._failing[qname]
                return reply
            name, seen = qname, set()
            while name not in seen:
                seen.add(name)
                node = self._data.get(name)
                if node is None:
                    if name == qname:
                        reply.header.rcode = RCODE.NXDOMAIN
                    break
                if "CNAME" in node and qtype != "CNAME":
                    target = node["CNAME"][0]
                    reply.add_answer(RR(name, QTYPE.CNAME, rdata=target, ttl=self.ttl))
                    name = _name(str(target.label))
                    continue
                for rdata in node.get(qtype, []):
                    reply.add_answer(RR(name, getattr(QTYPE, qtype), rdata=rdata, ttl=self.ttl))
                break
        return reply

    def _bind(self, port: int) -> None:
        """UDP on `port` (0: a free one), then TCP on the same number; retried if taken."""
        for _ in range(20):
            udp = DNSServer(self, self.host, port, logger=self._logger, handler=_Handler)
            self.port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self, self.host, self.port, tcp=True, logger=self._logger)
            except OSError:
                udp.server.server_close()
                if port:
                    raise
                continue
            self._servers = [udp, tcp]
            return
        raise OSError("no free port for both UDP and TCP")

    def start(self) -> DnsServer:
        self._threads = [
            threading.Thread(
                target=server.server.serve_forever,
                kwargs={"poll_interval": 0.05},  # how long stop() waits, at most
                name=f"dns-{self.port}",
                daemon=True,
            )
            for server in self._servers
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
