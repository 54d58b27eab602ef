"""The one address and domain normaliser (`rules.addresses`): the hard cases, as a table.

Every front-end and the CLI find an account through this function, so two spellings of
one address must give one canonical form, and anything that is not an address must be
refused rather than stored in a form no lookup will ever match again."""

from __future__ import annotations

import pytest

from pillarbox.rules import addresses
from pillarbox.rules.addresses import (
    InvalidAddress,
    normalize_address,
    normalize_alias_source,
    normalize_domain,
)

CANONICAL: list[tuple[str, str]] = [
    # case and surrounding space
    ("alice@example.org", "alice@example.org"),
    ("Alice@Example.ORG", "alice@example.org"),
    ("  alice@example.org\t", "alice@example.org"),
    # one trailing dot: an absolute domain name is the same domain (RFC 1034 §3.1)
    ("alice@example.org.", "alice@example.org"),
    # IDN: U-labels become lower-case A-labels (IDNA 2008, UTS #46 non-transitional)
    ("jo@bücher.example", "jo@xn--bcher-kva.example"),
    ("jo@BÜCHER.example", "jo@xn--bcher-kva.example"),
    ("jo@XN--BCHER-KVA.example", "jo@xn--bcher-kva.example"),
    ("jo@straße.de", "jo@xn--strae-oqa.de"),  # IDNA 2008 keeps ß (2003 made it "ss")
    ("jo@ｅｘａｍｐｌｅ.org", "jo@example.org"),  # full-width forms are mapped (UTS #46)
    # quoted local parts (RFC 5321 §4.1.2): unquoted when they need no quotes
    ('"alice"@example.org', "alice@example.org"),
    ('"Alice.Smith"@example.org', "alice.smith@example.org"),
    ('"john doe"@example.org', '"john doe"@example.org'),
    ('"a\\"b"@example.org', '"a\\"b"@example.org'),
    ('"a\\b"@example.org', "ab@example.org"),  # a quoted pair of an ordinary character
    ('"a@b"@example.org', '"a@b"@example.org'),
    # UTF-8 local parts (RFC 6531 §3.3): NFC, then lower-case (ß stays ß)
    ("JÖRG@example.org", "jörg@example.org"),
    ("jo\u0308rg@example.org", "jörg@example.org"),  # decomposed ö composes (NFC)
    ("STRAẞE@example.org", "straße@example.org"),
    ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
    # sub-addressing and the other atext characters stay as they are
    ("bob+Lists@example.org", "bob+lists@example.org"),
    ("o'brien@example.org", "o'brien@example.org"),
    ("a.b-c_d{e}@example.org", "a.b-c_d{e}@example.org"),
]

INVALID: list[str] = [
    "",
    "alice",
    "@example.org",
    "alice@",
    "alice@@example.org",
    "a..b@example.org",
    ".alice@example.org",
    "alice.@example.org",
    "al ice@example.org",
    "al\x00ice@example.org",
    "al\u200bice@example.org",  # zero-width space: a format character
    '"a\x01"@example.org',
    '"unterminated@example.org',
    "x" * 65 + "@example.org",  # RFC 5321 §4.5.3.1.1: 64 octets
    "ü" * 33 + "@example.org",  # 66 octets of UTF-8
    "alice@example..org",
    "alice@-example.org",
    "alice@example-.org",
    "alice@exa_mple.org",
    "alice@exa mple.org",
    "alice@" + "a" * 64 + ".org",  # RFC 1035: 63 octets a label
    "alice@" + ".".join(["a" * 60] * 5),  # over 253 octets
    "alice@[192.0.2.1]",  # an address literal is never a local domain
    "alice@example.org..",
    "alice@xn--zz.example",  # not valid punycode
]


@pytest.mark.parametrize(("given", "canonical"), CANONICAL)
def test_canonical_form(given: str, canonical: str) -> None:
    """Each spelling gives exactly this canonical form, and that form is a fixed point."""
    assert normalize_address(given) == canonical
    assert normalize_address(canonical) == canonical


@pytest.mark.parametrize("given", INVALID)
def test_refused(given: str) -> None:
    """Not an address: refused with InvalidAddress (a ValueError), never stored."""
    with pytest.raises(InvalidAddress):
        normalize_address(given)


def test_domains_and_alias_sources() -> None:
    """Domain names alone and the catch-all "@domain" use the same rules."""
    assert normalize_domain("Example.ORG.") == "example.org"
    assert normalize_domain("localhost") == "localhost"  # syntax only; hosting is policy
    assert normalize_alias_source("@Bücher.Example") == "@xn--bcher-kva.example"
    assert normalize_alias_source("Sales@Example.org") == "sales@example.org"
    with pytest.raises(InvalidAddress):
        normalize_alias_source("@")
    with pytest.raises(InvalidAddress):
        normalize_domain("[::1]")


def test_huge_input_is_refused_cheaply_and_never_cached() -> None:
    """A client can send a megabyte as a user name (an IMAP LOGIN literal): it is refused
    without echoing it back, and whitespace padding around a valid domain is stripped
    before the domain cache sees it, so the cache holds names, not what clients sent."""
    huge = "x" * 1_000_000
    for given in (huge + "@example.org", "a@" + huge + ".org", '"' + huge + '"@example.org'):
        with pytest.raises(InvalidAddress) as info:
            normalize_address(given)
        assert len(str(info.value)) < 200
    with pytest.raises(InvalidAddress):
        normalize_domain("a." * 600 + "org")
    addresses._canonical_domain.cache_clear()
    for pad in range(1, 50):
        assert normalize_address("a@" + " " * pad * 10 + "Example.ORG") == "a@example.org"
        assert normalize_domain(" " * pad * 1000 + "example.org ") == "example.org"
    # one entry per spelling of the name, whatever the padding
    assert addresses._canonical_domain.cache_info().currsize == 2
