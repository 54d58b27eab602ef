"""DKIM keys, signing and verifying, with keys published on the DNS server on loopback."""

from __future__ import annotations

import subprocess
import sys

import dkim as dkimpy
import dns.message
import dns.query
import pytest

from pillarbox.mailauth import dkim
from pillarbox.mailauth.dns import DnspythonResolver
from pillarbox.model.queue import DkimKey
from tests.dnsserver import DnsServer

MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: hello\r\n"
    b"Date: Sun, 06 Dec 2026 09:00:00 +0000\r\n"
    b"Message-ID: <1@example.test>\r\n"
    b"Received: from somewhere\r\n"
    b"\r\n"
    b"Hello Bob,\r\n\r\nsee you.\r\n"
)


def publish(server: DnsServer, key: DkimKey) -> None:
    server.set(f"{key.selector}._domainkey.{key.domain}", "TXT", dkim.key_record(key))


@pytest.fixture(scope="module")
def keys() -> dict[str, DkimKey]:
    """One key per algorithm (RSA generation is slow enough to do once)."""
    return {a: dkim.generate_key("example.test", "sel" + a[:3], a) for a in dkim.ALGORITHMS}


@pytest.fixture
def resolver(dns_server: DnsServer) -> DnspythonResolver:
    return DnspythonResolver([dns_server.address], 0.5, cache_size=0)


def test_generated_keys_have_the_documented_shape(keys: dict[str, DkimKey]) -> None:
    """PEM PKCS#8 private keys; p= is 32 raw bytes for Ed25519 and a DER key for RSA."""
    ed, rsa = keys["ed25519-sha256"], keys["rsa-sha256"]
    for key in (ed, rsa):
        assert key.private_key.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert len(ed.public_key) == 44  # base64 of 32 bytes
    assert len(rsa.public_key) > 300
    assert dkim.key_record(ed) == f"v=DKIM1; k=ed25519; p={ed.public_key}"
    with pytest.raises(ValueError):
        dkim.generate_key("example.test", "s", "rsa-sha1")


@pytest.mark.parametrize("algorithm", dkim.ALGORITHMS)
async def test_sign_then_verify(
    dns_server: DnsServer, resolver: DnspythonResolver, keys: dict[str, DkimKey], algorithm: str
) -> None:
    """A signature made by sign() passes; relaxed/relaxed, From oversigned, Received not
    signed (RFC 6376 §5.4.1)."""
    key = keys[algorithm]
    publish(dns_server, key)
    field = dkim.sign(MESSAGE, key)
    assert field.startswith(b"DKIM-Signature: ") and field.endswith(b"\r\n")
    tags = dkimpy.util.parse_tag_value(field[len(b"DKIM-Signature:") :])
    assert tags[b"c"] == b"relaxed/relaxed"
    assert tags[b"a"] == algorithm.encode()
    signed = [h.strip() for h in tags[b"h"].split(b":")]
    assert signed.count(b"from") == 2 and b"received" not in signed
    assert {b"to", b"subject", b"date", b"message-id"} <= set(signed)
    results = await dkim.verify(field + MESSAGE, resolver)
    assert results == [
        dkim.DkimResult("pass", "example.test", key.selector, algorithm, ""),
    ]


async def test_tampering_fails(
    dns_server: DnsServer, resolver: DnspythonResolver, keys: dict[str, DkimKey]
) -> None:
    """A changed body, a changed signed header and an added From all fail."""
    key = keys["ed25519-sha256"]
    publish(dns_server, key)
    signed = dkim.sign(MESSAGE, key) + MESSAGE
    body = signed.replace(b"see you.", b"send money.")
    [result] = await dkim.verify(body, resolver)
    assert (result.result, result.reason[:18]) == ("fail", "body hash mismatch")
    header = signed.replace(b"Subject: hello", b"Subject: HELLO")
    assert [r.result for r in await dkim.verify(header, resolver)] == ["fail"]
    extra_from = signed.replace(b"To:", b"From: mallory@evil.test\r\nTo:")
    assert [r.result for r in await dkim.verify(extra_from, resolver)] == ["fail"]
    # relaxed canonicalisation: refolding and whitespace changes still pass
    refolded = signed.replace(b"Subject: hello", b"Subject:   hello  ")
    assert [r.result for r in await dkim.verify(refolded, resolver)] == ["pass"]


async def test_key_problems(
    dns_server: DnsServer, resolver: DnspythonResolver, keys: dict[str, DkimKey]
) -> None:
    """No key is permerror, a revoked (empty p=) key permerror, a DNS failure temperror
    (RFC 6376 §6.1.2), and each of two signatures gets its own result."""
    ed, rsa = keys["ed25519-sha256"], keys["rsa-sha256"]
    message = dkim.sign(MESSAGE, rsa) + MESSAGE
    message = dkim.sign(message, ed) + message
    publish(dns_server, ed)
    results = await dkim.verify(message, resolver)
    assert [(r.result, r.selector) for r in results] == [
        ("pass", ed.selector),
        ("permerror", rsa.selector),
    ]
    assert "no key" in results[1].reason
    dns_server.set(f"{rsa.selector}._domainkey.example.test", "TXT", "v=DKIM1; k=rsa; p=")
    assert [r.result for r in await dkim.verify(message, resolver)] == ["pass", "permerror"]
    dns_server.fail(f"{rsa.selector}._domainkey.example.test")
    assert [r.result for r in await dkim.verify(message, resolver)] == ["pass", "temperror"]


async def test_malformed_and_absent_signatures(resolver: DnspythonResolver) -> None:
    """An unsigned message has no results; a signature missing tags is neutral
    (RFC 8601 §2.7.1) and never an exception."""
    assert await dkim.verify(MESSAGE, resolver) == []
    broken = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=x; b=abc\r\n" + MESSAGE
    [result] = await dkim.verify(broken, resolver)
    assert (result.result, result.domain, result.selector) == ("neutral", "example.test", "x")
    garbage = b"DKIM-Signature: this is not a tag list\r\n" + MESSAGE
    assert [r.result for r in await dkim.verify(garbage, resolver)] == ["neutral"]


def test_dkimpy_command_line_verifies_our_signature(
    dns_server: DnsServer, keys: dict[str, DkimKey]
) -> None:
    """dkimpy's own `dkimverify` tool, in its own process, accepts our signatures.

    dkimverify has no option for a DNS server (it uses the system resolver), so the child
    process sets dnspython's default resolver to the test server and then runs the tool's
    main(): the tool's own code and its own DNS path, not our resolver.
    """
    program = (
        "import sys, dns.resolver\n"
        "r = dns.resolver.Resolver(configure=False)\n"
        f"r.nameservers = ['127.0.0.1']; r.port = {dns_server.port}\n"
        "dns.resolver.default_resolver = r\n"
        "from dkim.dkimverify import main\n"
        "sys.argv = ['dkimverify']\n"
        "main()\n"
    )
    for key in keys.values():
        publish(dns_server, key)
        signed = dkim.sign(MESSAGE, key) + MESSAGE
        run = subprocess.run(
            [sys.executable, "-c", program], input=signed, capture_output=True, timeout=60
        )
        assert (run.returncode, run.stdout) == (0, b"signature ok\n"), run.stderr
        tampered = signed.replace(b"see you.", b"see me.")
        run = subprocess.run(
            [sys.executable, "-c", program], input=tampered, capture_output=True, timeout=60
        )
        assert run.returncode == 1


def test_published_key_is_served(dns_server: DnsServer, keys: dict[str, DkimKey]) -> None:
    """The 2048-bit RSA record (over 255 bytes) is served whole (split into strings)."""
    rsa = keys["rsa-sha256"]
    publish(dns_server, rsa)
    query = dns.message.make_query(f"{rsa.selector}._domainkey.example.test", "TXT")
    answer = dns.query.tcp(query, "127.0.0.1", port=dns_server.port, timeout=2)
    [rdata] = answer.answer[0]
    assert len(rdata.strings) > 1
    assert b"".join(rdata.strings).decode() == dkim.key_record(rsa)


async def test_unparseable_header_is_neutral(
    dns_server: DnsServer, resolver: DnspythonResolver, keys: dict[str, DkimKey]
) -> None:
    """A header line dkimpy cannot parse gives a neutral result, not an exception."""
    key = keys["ed25519-sha256"]
    publish(dns_server, key)
    signed = dkim.sign(MESSAGE, key) + MESSAGE
    broken = signed.replace(b"Subject: hello\r\n", b"Subject: hello\r\nno colon here\r\n")
    assert [r.result for r in await dkim.verify(broken, resolver)] == ["neutral"]
