"""DMARC policy discovery, parsing, alignment and the action to take, with records on the
DNS server on loopback."""

from __future__ import annotations

import pytest

from pillarbox.mailauth.dkim import DkimResult
from pillarbox.mailauth.dmarc import (
    DmarcRecord,
    aligned,
    check_dmarc,
    from_domains,
    organizational_domain,
    parse_record,
)
from pillarbox.mailauth.dns import DnspythonResolver
from pillarbox.mailauth.spf import SpfResult
from tests.dnsserver import DnsServer

NO_SPF = SpfResult("none", "", "mailfrom", "", "")


def spf_pass(domain: str) -> SpfResult:
    return SpfResult("pass", domain, "mailfrom", f"x@{domain}", "")


def dkim_pass(domain: str) -> DkimResult:
    return DkimResult("pass", domain, "s", "ed25519-sha256", "")


def message(*froms: str) -> bytes:
    return b"".join(b"From: " + f.encode() + b"\r\n" for f in froms) + b"Subject: x\r\n\r\nhi\r\n"


@pytest.fixture
def resolver(dns_server: DnsServer) -> DnspythonResolver:
    dns_server.add("_dmarc.example.test", "TXT", "v=DMARC1; p=reject; sp=quarantine; adkim=s")
    dns_server.add("_dmarc.example.co.uk", "TXT", "v=DMARC1; p=quarantine")
    dns_server.add("_dmarc.relaxed.test", "TXT", "v=DMARC1; p=reject")
    dns_server.add("_dmarc.half.test", "TXT", "v=DMARC1; p=reject; pct=50")
    dns_server.add("_dmarc.twice.test", "TXT", "v=DMARC1; p=reject")
    dns_server.add("_dmarc.twice.test", "TXT", "v=DMARC1; p=none")
    return DnspythonResolver([dns_server.address], 0.5, cache_size=0)


def test_organizational_domain_uses_the_shipped_list() -> None:
    """The registered domain under a public suffix (RFC 7489 §3.2)."""
    assert organizational_domain("a.b.Example.CO.UK.") == "example.co.uk"
    assert organizational_domain("mail.example.test") == "example.test"
    assert organizational_domain("co.uk") == "co.uk"


def test_alignment_modes() -> None:
    """Strict is equality; relaxed is the same organisational domain."""
    assert aligned("mail.example.test", "example.test", "r")
    assert not aligned("mail.example.test", "example.test", "s")
    assert aligned("Example.test.", "example.test", "s")
    assert not aligned("example.org", "example.test", "r")
    assert not aligned("", "example.test", "r")


def test_record_parsing() -> None:
    """Tags with defaults; v=DMARC1 must come first; bad p= without rua is no record."""
    assert parse_record(b"v=DMARC1; p=reject") == DmarcRecord("reject", None, "r", "r", 100)
    assert parse_record(b"v=DMARC1;p=none;sp=reject;adkim=s;aspf=s;pct=20") == DmarcRecord(
        "none", "reject", "s", "s", 20
    )
    assert parse_record(b"p=reject; v=DMARC1") is None
    assert parse_record(b"v=DMARC1; p=bogus") is None
    assert parse_record(b"v=DMARC1; rua=mailto:d@example.test") == DmarcRecord(
        "none", None, "r", "r", 100
    )
    assert parse_record(b"v=DMARC1; p=reject; pct=x; sp=odd").pct == 100  # type: ignore[union-attr]


def test_from_domains() -> None:
    """Every distinct domain of every From mailbox."""
    assert from_domains(message("Alice <alice@Example.TEST>")) == ["example.test"]
    assert from_domains(message("a@x.test, b@y.test", "c@x.test")) == ["x.test", "y.test"]
    assert from_domains(message("undisclosed")) == []
    assert from_domains(b"Subject: none\r\n\r\n") == []


async def test_pass_through_aligned_spf_or_dkim(resolver: DnspythonResolver) -> None:
    """Either aligned SPF or aligned DKIM passes; adkim=s needs the exact domain."""
    msg = message("a@example.test")
    result = await check_dmarc(msg, spf_pass("example.test"), [], resolver)
    assert (result.result, result.spf_aligned, result.action) == ("pass", True, "none")
    result = await check_dmarc(msg, NO_SPF, [dkim_pass("example.test")], resolver)
    assert (result.result, result.dkim_aligned) == ("pass", True)
    result = await check_dmarc(msg, NO_SPF, [dkim_pass("mail.example.test")], resolver)
    assert (result.result, result.policy, result.action) == ("fail", "reject", "reject")
    relaxed = message("a@relaxed.test")
    result = await check_dmarc(relaxed, spf_pass("bounce.relaxed.test"), [], resolver)
    assert result.result == "pass"


async def test_failing_dkim_does_not_count(resolver: DnspythonResolver) -> None:
    """Only a passing signature aligns."""
    failed = DkimResult("fail", "example.test", "s", "rsa-sha256", "bad")
    result = await check_dmarc(message("a@example.test"), NO_SPF, [failed], resolver)
    assert result.result == "fail"


async def test_subdomain_uses_organizational_record_and_sp(resolver: DnspythonResolver) -> None:
    """No record at the subdomain: the organisational domain's, with sp= (RFC 7489 §6.6.3)."""
    result = await check_dmarc(message("a@news.example.test"), NO_SPF, [], resolver)
    assert (result.result, result.policy, result.action) == ("fail", "quarantine", "quarantine")
    result = await check_dmarc(message("a@shop.example.co.uk"), NO_SPF, [], resolver)
    assert (result.result, result.policy) == ("fail", "quarantine")


async def test_no_record_none_and_dns_failure(
    dns_server: DnsServer, resolver: DnspythonResolver
) -> None:
    """No record (or two) is none; a DNS failure is temperror; no From is permerror."""
    assert (await check_dmarc(message("a@nodmarc.test"), NO_SPF, [], resolver)).result == "none"
    assert (await check_dmarc(message("a@twice.test"), NO_SPF, [], resolver)).result == "none"
    dns_server.fail("_dmarc.example.test")
    result = await check_dmarc(message("a@example.test"), NO_SPF, [], resolver)
    assert (result.result, result.action) == ("temperror", "none")
    result = await check_dmarc(b"Subject: x\r\n\r\n", NO_SPF, [], resolver)
    assert (result.result, result.action) == ("permerror", "none")


async def test_pct_samples(resolver: DnspythonResolver) -> None:
    """pct=50: a failure inside the sample gets p, outside it the next milder action."""
    msg = message("a@half.test")
    inside = await check_dmarc(msg, NO_SPF, [], resolver, sample=lambda: 0.2)
    outside = await check_dmarc(msg, NO_SPF, [], resolver, sample=lambda: 0.7)
    assert (inside.action, outside.action) == ("reject", "quarantine")


async def test_several_from_domains_take_the_strictest(resolver: DnspythonResolver) -> None:
    """A second From domain cannot lift a p=reject failure (RFC 7489 §6.6.1)."""
    msg = message("a@relaxed.test", "b@mine.test")
    result = await check_dmarc(msg, spf_pass("mine.test"), [dkim_pass("mine.test")], resolver)
    assert (result.result, result.from_domain, result.action) == ("fail", "relaxed.test", "reject")
