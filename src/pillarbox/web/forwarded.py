"""Behind a reverse proxy: the client's address and scheme, believed only from the proxy.

A TLS proxy in front of the webmail connects from its own address over plain HTTP, so
without help every browser would look like the proxy: one address for the sign-in
slow-down (one guesser would slow everyone down, and every request would count as
loopback), and ``http`` for the cookie's Secure flag and the password-over-TLS rule.
Proxies say the truth in ``X-Forwarded-For`` and ``X-Forwarded-Proto`` (de-facto
headers; RFC 7239 ``Forwarded`` is their standard form, which common proxies do not send
by default). Anyone can send those headers, so they are read only when the connection
comes from an address in ``[web] trusted_proxies``; from anywhere else they change
nothing.

X-Forwarded-For is a list each proxy appends to; only the part added by our own proxies
can be believed. So the list is read from the right, skipping addresses of trusted
proxies, and the first other address is the client; whatever it claims further left is
its own say-so. The scheme is the value the nearest proxy set (the last one).

Must not: trust any header from a peer outside ``trusted_proxies``.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from starlette.types import ASGIApp, Receive, Scope, Send

Network = IPv4Network | IPv6Network


class TrustedProxies:
    """Rewrites the scope's ``client`` and ``scheme`` from a trusted proxy's headers."""

    def __init__(self, app: ASGIApp, *, proxies: Sequence[str]) -> None:
        self.app = app
        self.networks: list[Network] = [ip_network(p, strict=False) for p in proxies]

    def trusted(self, address: str) -> bool:
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and self.networks and client and self.trusted(client[0]):
            scope = dict(scope)
            forwarded = self.client_from(_values(scope, b"x-forwarded-for"))
            if forwarded is not None:
                scope["client"] = (forwarded, 0)
            proto = _values(scope, b"x-forwarded-proto")
            if proto and proto[-1].lower() in ("http", "https"):
                scope["scheme"] = proto[-1].lower()
        await self.app(scope, receive, send)

    def client_from(self, chain: list[str]) -> str | None:
        """The rightmost address not of a trusted proxy; None if the list is unusable
        (then the peer, the proxy itself, stays the client)."""
        found = None
        for entry in reversed(chain):
            address = _address(entry)
            if address is None:
                return found
            found = address
            if not self.trusted(address):
                return address
        return found


def _values(scope: Scope, name: bytes) -> list[str]:
    """Every comma-separated value of every field of that name, in order (RFC 9110
    §5.3: several field lines are one list)."""
    out: list[str] = []
    for key, value in scope["headers"]:
        if key == name:
            out += [v.strip() for v in value.decode("latin-1").split(",") if v.strip()]
    return out


def _address(entry: str) -> str | None:
    """An IP address from one X-Forwarded-For entry ("203.0.113.7", "[2001:db8::1]",
    and the ":port" some proxies add); None if it is not one."""
    text = entry.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ip_address(text))
    except ValueError:
        return None
