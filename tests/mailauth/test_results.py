"""The Authentication-Results field we write, and finding fields that claim our name."""

from __future__ import annotations

from pillarbox.mailauth.dkim import DkimResult
from pillarbox.mailauth.dmarc import DmarcResult
from pillarbox.mailauth.results import (
    authentication_results,
    authserv_id,
    own_results_spans,
    remove_own_results,
)
from pillarbox.mailauth.spf import SpfResult

SPF = SpfResult("pass", "example.test", "mailfrom", "bounce@example.test", "")
DKIM = [
    DkimResult("pass", "example.test", "ed", "ed25519-sha256", ""),
    DkimResult("fail", "example.test", "rsa", "rsa-sha256", 'body hash "mismatch"'),
]
DMARC = DmarcResult("pass", "example.test", "reject", "none", True, True)


def test_field_lists_every_result() -> None:
    """spf with smtp.mailfrom, one dkim per signature with header.d/s/a, dmarc with
    header.from; folded lines, CRLF at the end (RFC 8601 §2.2)."""
    field = authentication_results("MX.Example.ORG", SPF, DKIM, DMARC)
    assert field == (
        b"Authentication-Results: mx.example.org;\r\n"
        b"\tspf=pass smtp.mailfrom=bounce@example.test;\r\n"
        b"\tdkim=pass header.d=example.test header.s=ed header.a=ed25519-sha256;\r\n"
        b'\tdkim=fail reason="body hash \\"mismatch\\"" header.d=example.test header.s=rsa'
        b" header.a=rsa-sha256;\r\n"
        b"\tdmarc=pass header.from=example.test\r\n"
    )


def test_unsigned_helo_and_failing_dmarc() -> None:
    """No signature is dkim=none; the null sender reports smtp.helo; a DMARC failure
    says what the policy asked for."""
    spf = SpfResult("fail", "helo.test", "helo", "postmaster@helo.test", "")
    dmarc = DmarcResult("fail", "example.test", "reject", "quarantine")
    field = authentication_results("mx.example.org", spf, [], dmarc)
    assert b"spf=fail smtp.helo=helo.test;" in field
    assert b"dkim=none;" in field
    assert b'dmarc=fail reason="p=reject action=quarantine" header.from=example.test' in field
    odd = SpfResult("pass", "example.test", "mailfrom", '"a b"@example.test', "")
    assert b"smtp.mailfrom=example.test;" in authentication_results("h", odd, [], dmarc)


def test_authserv_id_parsing() -> None:
    """The authserv-id after comments and white space, quoted or not."""
    assert authserv_id(b" mx.example.org; spf=pass") == "mx.example.org"
    assert authserv_id(b" (forged (nested)) MX.example.org 1; none") == "mx.example.org"
    assert authserv_id(b' "mx.example.org"; none') == "mx.example.org"
    assert authserv_id(b"\r\n\tmx.example.org.;none") == "mx.example.org"


def test_authserv_id_quoted_pairs() -> None:
    """Quoted-pairs are undone one pair at a time (RFC 5322 §3.2.4): an escaped backslash
    before the closing quote ends the string; an escaped character is itself."""
    assert authserv_id(b' "mx\\.example.org"; none') == "mx.example.org"
    assert authserv_id(b' "mx.example.org\\\\"; dkim=pass') == "mx.example.org\\"
    assert authserv_id(b' "a\\\\" mx.example.org; dkim=pass') == "a\\"
    assert authserv_id(b' "mx.example.org') == "mx.example.org"  # unterminated


def test_own_fields_are_found_and_removed() -> None:
    """Only fields claiming our authserv-id go (RFC 8601 §5); others and the body stay."""
    message = (
        b"Authentication-Results: mx.example.org; dmarc=pass\r\n"
        b"Received: from x\r\n"
        b"Authentication-Results: other.example; spf=fail\r\n"
        b"authentication-results: (c) MX.EXAMPLE.ORG;\r\n\tdkim=pass header.d=bank.test\r\n"
        b"Subject: hi\r\n"
        b"\r\n"
        b"Authentication-Results: mx.example.org; in the body\r\n"
    )
    spans = own_results_spans(message, "mx.example.org")
    assert len(spans) == 2
    assert remove_own_results(message, "mx.example.org") == (
        b"Received: from x\r\n"
        b"Authentication-Results: other.example; spf=fail\r\n"
        b"Subject: hi\r\n"
        b"\r\n"
        b"Authentication-Results: mx.example.org; in the body\r\n"
    )
    assert remove_own_results(message, "elsewhere.test") == message
