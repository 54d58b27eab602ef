"""Pillarbox servers as mail domains on loopback, and the user's side of them.

Shared by the end-to-end tests where one Pillarbox sends to another (or to a test peer)
through a DNS server on loopback (tests/dnsserver.py): each server binds its own
127.0.0.x address, is the MX of its domain and has one user (alice@a.test, else
bob@<domain>) with the password `PASSWORD` and DKIM keys published in the DNS. The user's
side is what a mail client does: submit with STARTTLS and AUTH, read over POP3 or IMAP.
"""

from __future__ import annotations

import dataclasses
import imaplib
import poplib
import smtplib
import socket
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from pillarbox.config import (
    Config,
    DeliveryConfig,
    DnsConfig,
    ListenConfig,
    MailAuthConfig,
    ServerConfig,
)
from pillarbox.mailauth.dkim import generate_key
from pillarbox.mailauth.zone import dns_records
from tests.dnsserver import DnsServer
from tests.e2e.conftest import PASSWORD, RunningServer, password_hash
from tests.e2e.test_smtp_helpers import client_tls

T = TypeVar("T")


def shared_port(*hosts: str) -> int:
    """A TCP port free on every one of `hosts` (each server binds its own address)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port: int = probe.getsockname()[1]
        try:
            for host in hosts[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on every host")


def mta(
    tmp: Path, ip: str, domain: str, smtp_port: int, dns: DnsServer, **delivery: Any
) -> RunningServer:
    """A started Pillarbox for `domain` on `ip`, with its user and DKIM keys, and the
    domain's records published in `dns`. `delivery` overrides `[delivery]` settings."""
    hostname = f"mx.{domain}"
    config = Config(
        server=ServerConfig(hostname=hostname, data_dir=str(tmp / domain)),
        listen=ListenConfig(
            smtp=f"{ip}:{smtp_port}",
            submission=f"{ip}:0",
            submissions="",
            imap=f"{ip}:0",
            imaps="",
            pop3=f"{ip}:0",
            pop3s="",
            http="",
            lmtp="",
        ),
        delivery=dataclasses.replace(
            DeliveryConfig(port=smtp_port, allow_private_networks=True, source_address=ip),
            **delivery,
        ),
        dns=DnsConfig(nameservers=[dns.nameserver], timeout=2.0),
        mailauth=MailAuthConfig(trusted_networks=[]),  # loopback is the internet here
    )
    server = RunningServer(config)
    server.start()
    keys = [generate_key(domain, "pb1e"), generate_key(domain, "pb1r", "rsa-sha256")]

    async def provision() -> None:
        await server.services.accounts.add_domain(domain)
        user = "alice" if domain == "a.test" else "bob"
        await server.store.add_account(f"{user}@{domain}", password_hash())
        for key in keys:
            await server.store.put_dkim_key(key)

    server.call(provision)
    dns.load_zone(dns_records(domain, hostname, keys))
    dns.add(hostname, "A", ip)
    return server


def submit(
    server: RunningServer,
    ip: str,
    user: str,
    message: EmailMessage,
    *,
    to: Sequence[str] | None = None,
    mail_options: Sequence[str] = (),
    rcpt_options: Sequence[str] = (),
) -> None:
    """`user` sends `message` on `submission` with STARTTLS and AUTH (to its To: unless
    `to` is given; ESMTP parameters for MAIL and every RCPT as in smtplib)."""
    with smtplib.SMTP(ip, server.port("submission"), local_hostname="laptop.test") as s:
        s.starttls(context=client_tls())
        s.login(user, PASSWORD)
        s.send_message(message, to_addrs=to, mail_options=mail_options, rcpt_options=rcpt_options)


def wait_until(
    probe: Callable[[], T | None], what: str, timeout: float = 30.0, interval: float = 0.1
) -> T:
    """Poll `probe` until it returns something other than None or False; fail the test
    with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(interval)  # polling for the condition, bounded by the deadline


def by_pop3(server: RunningServer, ip: str, user: str, timeout: float = 30.0) -> bytes:
    """The first message of `user`'s maildrop over POP3, waiting until there is one."""

    def first() -> bytes | None:
        pop = poplib.POP3(ip, server.port("pop3"), timeout=10)
        try:
            pop.user(user)
            pop.pass_(PASSWORD)
            if pop.stat()[0]:
                return b"\r\n".join(pop.retr(1)[1]) + b"\r\n"
            return None
        finally:
            pop.quit()

    return wait_until(first, f"a message for {user} over POP3", timeout, interval=0.2)


def imap_inbox(server: RunningServer, ip: str, user: str) -> list[bytes]:
    """Every message in `user`'s INBOX over IMAP, in UID order (read-only, flags kept)."""
    imap = imaplib.IMAP4(ip, server.port("imap"))
    try:
        imap.login(user, PASSWORD)
        _typ, count = imap.select("INBOX", readonly=True)
        if int(count[0] or 0) == 0:
            return []
        _typ, data = imap.fetch("1:*", "(BODY.PEEK[])")
        return [part[1] for part in data if isinstance(part, tuple)]
    finally:
        imap.logout()


def by_imap(server: RunningServer, ip: str, user: str) -> bytes:
    """The first message in `user`'s INBOX over IMAP (there must be one)."""
    messages = imap_inbox(server, ip, user)
    assert messages, f"{user}'s INBOX is empty"
    return messages[0]
