"""The DNS records a mail domain served by Pillarbox needs, in zone-file syntax
(`pillarbox dns DOMAIN`).

What is published, and why:
- MX 10 to our host name: mail for the domain comes here.
- SPF `v=spf1 mx -all`: the MX host is the one that sends the domain's mail, so "mx" names
  exactly the addresses allowed, and "-all" makes forgeries a plain SPF fail (RFC 7208
  §4.6.2). A domain that also sends through other services adds them before -all. The
  host name gets `v=spf1 a -all` when it lies inside the domain, for bounces (null sender:
  SPF checks the HELO name, RFC 7208 §2.4).
- one DKIM TXT per key at `selector._domainkey`, split into 255-character strings
  (RFC 6376 §3.6.2.2; RFC 7208 §3.3 for the joining).
- DMARC `v=DMARC1; p=quarantine`: every message Pillarbox sends is DKIM-signed with the
  From domain's key and leaves from the MX host, so its own mail aligns; quarantine rather
  than reject leaves room for a forgotten sender while protecting from day one. No rua=:
  aggregate reports are XML sent daily by every large receiver, and Pillarbox does not
  process them yet; the comment says how to ask for them.
- SRV (RFC 6186, RFC 8314 §5.1): `_submissions` (465) and `_submission` (587) are
  offered, since older clients know only the latter; `_imaps` (993) and `_pop3s` (995)
  are offered and `_imap`/`_pop3` are published as "0 0 0 ." (decidedly not available,
  RFC 6186 §4) so that clients configure implicit TLS, as RFC 8314 §3 prefers, and never a
  STARTTLS port an attacker can strip. Standard ports: a deployment on other ports edits
  them.
- autoconfig / autodiscover CNAMEs to our host name, where clients look for their
  configuration (Thunderbird autoconfig, Outlook autodiscover).
The host name's A/AAAA records are named in a comment: only the operator knows them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pillarbox.mailauth.dkim import key_record
from pillarbox.model.queue import DkimKey

SERVICES = (
    ("_submissions._tcp", 465),
    ("_submission._tcp", 587),
    ("_imaps._tcp", 993),
    ("_pop3s._tcp", 995),
    ("_imap._tcp", 0),
    ("_pop3._tcp", 0),
)


def txt_strings(text: str) -> str:
    """`text` as zone-file character-strings of at most 255 characters, quoted."""
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    quoted = ['"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks]
    return quoted[0] if len(quoted) == 1 else "( " + " ".join(quoted) + " )"


def dns_records(domain: str, hostname: str, keys: Sequence[DkimKey], *, ttl: int = 3600) -> str:
    """Every record `domain` needs for mail served by `hostname`, as a zone file fragment
    with absolute names (reasons in the module docstring)."""
    domain = domain.rstrip(".").lower()
    host = hostname.rstrip(".").lower() + "."
    origin = domain + "."
    lines = [
        f"; Mail records for {domain}, served by {host}",
        f"; {host} needs its A (and AAAA) records: the address(es) Pillarbox listens on.",
        f"$ORIGIN {origin}",
        f"$TTL {ttl}",
        f"{origin} IN MX 10 {host}",
        f'{origin} IN TXT "v=spf1 mx -all"',
    ]
    if host.endswith("." + origin) or host == origin:
        lines.append(f'{host} IN TXT "v=spf1 a -all"')
    for key in keys:
        name = f"{key.selector}._domainkey.{origin}"
        lines.append(f"{name} IN TXT {txt_strings(key_record(key))}")
    lines.append(f'_dmarc.{origin} IN TXT "v=DMARC1; p=quarantine"')
    lines.append(f"; for daily reports, add rua=mailto:dmarc-reports@{domain} to the record")
    for service, port in SERVICES:
        target = f"0 1 {port} {host}" if port else "0 0 0 ."
        lines.append(f"{service}.{origin} IN SRV {target}")
    lines.append(f"autoconfig.{origin} IN CNAME {host}")
    lines.append(f"autodiscover.{origin} IN CNAME {host}")
    return "\n".join(lines) + "\n"
