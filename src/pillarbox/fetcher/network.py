"""Connections to other providers: the address check and TLS.

The address check is made on the socket's peer address after the connection is made and
before a byte is read or sent (`check_peer`), so a host name that resolves to a public
address for a check and to a private one for the connection (DNS rebinding) gains
nothing. Refused unless `allow_private`: loopback, RFC 1918 and RFC 4193 private,
link-local, multicast, reserved and unspecified addresses, and any IPv4-mapped IPv6
address of those (`ipaddress.is_global` is the rule).

TLS is verified: system CAs (and a configured CA file), host name checked, TLS 1.2 at
least (RFC 8314 §5.3: a certificate that cannot be validated gives no confidentiality).
No mode falls back to plain text; `none` is plain text from the start, by the user's
choice.

Must not: know POP3 or IMAP.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl

from pillarbox.fetcher.errors import FetchError, InsecureConnection, RefusedAddress


def is_allowed(address: str, *, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return allow_private or ip.is_global


def check_peer(sock: socket.socket, host: str, *, allow_private: bool) -> str:
    """The peer's IP address, or RefusedAddress (the socket is then closed)."""
    address = str(sock.getpeername()[0])
    if not is_allowed(address, allow_private=allow_private):
        sock.close()
        raise RefusedAddress(
            f"{host} is at {address}, a loopback, private or link-local address: refused"
            " (set [fetcher] allow_private_networks = true to allow it)"
        )
    return address


def connect(
    host: str, port: int, *, timeout: float, allow_private: bool
) -> tuple[socket.socket, str]:
    """A connected TCP socket and the address it reached (see module docstring): only
    allowed addresses of the host are tried, and the peer is checked once connected."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve {host}: {exc.strerror}") from None
    allowed = [i for i in infos if is_allowed(str(i[4][0]), allow_private=allow_private)]
    if not allowed:
        address = str(infos[0][4][0]) if infos else "?"
        raise RefusedAddress(
            f"{host} is at {address}, a loopback, private or link-local address: refused"
            " (set [fetcher] allow_private_networks = true to allow it)"
        )
    failure = "no address"
    for family, kind, proto, _name, sockaddr in allowed:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
        except TimeoutError:
            sock.close()
            failure = "connection timed out"
            continue
        except OSError as exc:
            sock.close()
            failure = str(exc.strerror or exc)
            continue
        return sock, check_peer(sock, host, allow_private=allow_private)
    raise FetchError(f"{host} port {port}: {failure}")


def client_context(ca_file: str = "") -> ssl.SSLContext:
    """Verifying context: system CAs plus `ca_file`, host names checked, TLS 1.2+."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def wrap(sock: socket.socket, context: ssl.SSLContext, host: str) -> ssl.SSLSocket:
    """The TLS handshake, certificate verified for `host`; InsecureConnection if not."""
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise InsecureConnection(f"{host}: certificate not trusted: {exc.verify_message}") from None
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        raise InsecureConnection(f"{host}: TLS handshake failed: {exc}") from None


def cipher_text(sock: socket.socket) -> str | None:
    """'TLSv1.3 TLS_AES_256_GCM_SHA384' for the Received line; None without TLS."""
    if isinstance(sock, ssl.SSLSocket):
        cipher = sock.cipher()
        if cipher is not None:
            return f"{cipher[1]} {cipher[0]}"
    return None
