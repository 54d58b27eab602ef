"""`dns_records`: the zone-file text parses with dnspython and holds every record."""

from __future__ import annotations

import dns.rdatatype
import dns.zone

from pillarbox.mailauth import dkim
from pillarbox.mailauth.zone import dns_records


def records(text: str) -> dict[tuple[str, str], list[str]]:
    zone = dns.zone.from_text(text, check_origin=False, relativize=False)
    found: dict[tuple[str, str], list[str]] = {}
    for name, rdataset in zone.iterate_rdatasets():
        key = (name.to_text(), dns.rdatatype.to_text(rdataset.rdtype))
        found[key] = sorted(r.to_text() for r in rdataset)
    return found


def test_every_record_parses() -> None:
    """MX, SPF, one DKIM TXT per key (long keys split in 255-byte strings), DMARC, SRV and
    the autoconfig CNAMEs, all absolute and valid zone-file syntax."""
    keys = [
        dkim.generate_key("example.test", "pb1e", "ed25519-sha256"),
        dkim.generate_key("example.test", "pb1r", "rsa-sha256"),
    ]
    text = dns_records("Example.TEST", "mail.example.test", keys)
    found = records(text)
    assert found[("example.test.", "MX")] == ["10 mail.example.test."]
    assert found[("example.test.", "TXT")] == ['"v=spf1 mx -all"']
    assert found[("mail.example.test.", "TXT")] == ['"v=spf1 a -all"']
    assert found[("_dmarc.example.test.", "TXT")] == ['"v=DMARC1; p=quarantine"']
    zone = dns.zone.from_text(text, check_origin=False, relativize=False)
    for key in keys:
        [rdata] = zone.find_rdataset(f"{key.selector}._domainkey.example.test.", "TXT")
        assert all(len(s) <= 255 for s in rdata.strings)
        assert b"".join(rdata.strings).decode() == dkim.key_record(key)
    assert found[("_submissions._tcp.example.test.", "SRV")] == ["0 1 465 mail.example.test."]
    assert found[("_submission._tcp.example.test.", "SRV")] == ["0 1 587 mail.example.test."]
    assert found[("_imaps._tcp.example.test.", "SRV")] == ["0 1 993 mail.example.test."]
    assert found[("_pop3s._tcp.example.test.", "SRV")] == ["0 1 995 mail.example.test."]
    assert found[("_imap._tcp.example.test.", "SRV")] == ["0 0 0 ."]
    assert found[("_pop3._tcp.example.test.", "SRV")] == ["0 0 0 ."]
    assert found[("autoconfig.example.test.", "CNAME")] == ["mail.example.test."]
    assert found[("autodiscover.example.test.", "CNAME")] == ["mail.example.test."]


def test_host_outside_the_domain() -> None:
    """A host name in another zone gets no record here (it is not this zone's to set)."""
    found = records(dns_records("example.test", "mx.provider.test.", []))
    assert found[("example.test.", "MX")] == ["10 mx.provider.test."]
    assert not any(name.startswith("mx.provider") for name, _ in found)
    assert not any("_domainkey" in name for name, _ in found)
