"""DMARC (RFC 7489): does the From: domain vouch for this message, and what does it ask for?

Policy discovery (RFC 7489 §6.6.3): the TXT records at `_dmarc.<From domain>`, else at
`_dmarc.<organisational domain>`. The organisational domain comes from the Public Suffix
List that `publicsuffixlist` ships (never downloaded at run time; an update of the package
updates the list). Identifier alignment (RFC 7489 §3.1): an SPF pass for the MAIL FROM (or
HELO) domain, or a DKIM pass for a d= domain, aligned with the From domain — equal in strict
mode, the same organisational domain in relaxed mode.

Decisions:
- pct (RFC 7489 §6.6.4) is honoured by sampling: a failing message outside the sample gets
  the next milder action (reject → quarantine → none). The sampler is injectable for tests.
- From (RFC 7489 §6.6.1): no From field, or none with a domain, is `permerror` with action
  "none" (there is no domain to protect). Several From fields or several domains in one
  are each evaluated, and the strictest outcome is returned, so adding a second From
  cannot take a message out of a domain's p=reject.
- An invalid p= (or a missing one) is p=none when rua= is present and otherwise no policy,
  as RFC 7489 §6.6.3 step 6 says; an invalid sp= is ignored (p applies).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from publicsuffixlist import PublicSuffixList

from pillarbox.mailauth.dkim import DkimResult
from pillarbox.mailauth.dns import DnsTempError, Resolver
from pillarbox.mailauth.spf import SpfResult
from pillarbox.message.addresses import addresses
from pillarbox.message.headers import scan_header, unfold

POLICIES = ("none", "quarantine", "reject")
SEVERITY = ("pass", "none", "permerror", "temperror", "fail")  # which of several to report
MILDER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """The tags of a DMARC record that evaluation uses (RFC 7489 §6.3)."""

    p: str  # none, quarantine, reject
    sp: str | None  # subdomain policy, None if absent (p then applies)
    adkim: str  # "r" relaxed or "s" strict
    aspf: str
    pct: int  # 0..100


@dataclass(frozen=True, slots=True)
class DmarcResult:
    """The DMARC outcome for one message (RFC 8601 §2.7.5 for the result names)."""

    result: str  # pass, fail, none, temperror, permerror
    from_domain: str  # the RFC5322.From domain evaluated ("" if none)
    policy: str  # what the domain asks for failing mail: none, quarantine, reject
    action: str  # what to apply: `policy` for a sampled failure, milder outside pct, or none
    spf_aligned: bool = False
    dkim_aligned: bool = False
    reason: str = ""


@cache
def _suffix_list() -> PublicSuffixList:
    return PublicSuffixList()  # the copy the package ships


def organizational_domain(domain: str) -> str:
    """The registered domain under a public suffix (RFC 7489 §3.2), or `domain` itself
    when it is a public suffix or not in the list's shape."""
    domain = domain.rstrip(".").lower()
    found = _suffix_list().privatesuffix(domain)
    return str(found) if found else domain


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """RFC 7489 §3.1.1/§3.1.2: strict is equality, relaxed the same organisational domain."""
    identifier, from_domain = identifier.rstrip(".").lower(), from_domain.rstrip(".").lower()
    if not identifier or not from_domain:
        return False
    if mode == "s":
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


def parse_record(text: bytes) -> DmarcRecord | None:
    """The record's tags, or None if it is not a DMARC record to apply (RFC 7489 §6.6.3)."""
    try:
        value = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    tags: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, tag_value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), tag_value.strip())
    first = value.split(";", 1)[0].replace(" ", "").replace("\t", "")
    if first != "v=DMARC1":  # RFC 7489 §6.4: v= first, exactly DMARC1
        return None
    p = tags.get("p", "").lower()
    if p not in POLICIES:
        if not tags.get("rua"):
            return None
        p = "none"  # RFC 7489 §6.6.3 step 6
    sp = tags.get("sp", "").lower()
    try:
        pct = min(100, max(0, int(tags.get("pct", "100"))))
    except ValueError:
        pct = 100
    return DmarcRecord(
        p=p,
        sp=sp if sp in POLICIES else None,
        adkim="s" if tags.get("adkim", "").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "").lower() == "s" else "r",
        pct=pct,
    )


async def _record_at(domain: str, resolver: Resolver) -> DmarcRecord | None:
    texts = await resolver.txt(f"_dmarc.{domain}")
    records = [r for r in (parse_record(t) for t in texts if t[:8].upper() == b"V=DMARC1") if r]
    return records[0] if len(records) == 1 else None  # several: no policy (§6.6.3 step 5)


async def find_record(domain: str, resolver: Resolver) -> tuple[DmarcRecord | None, bool]:
    """The record for `domain` and whether it came from the organisational domain."""
    record = await _record_at(domain, resolver)
    if record is not None:
        return record, False
    org = organizational_domain(domain)
    if org != domain:
        return await _record_at(org, resolver), True
    return None, False


def from_domains(message: bytes) -> list[str]:
    """The distinct domains of every mailbox in every From field, lower-case, in order."""
    fields, _ = scan_header(message)
    found: list[str] = []
    for field in fields:
        if field.name != "from":
            continue
        for _name, address in addresses(unfold(field.value)):
            local, at, domain = address.rpartition("@")
            domain = domain.rstrip(".").lower()
            if at and local and domain and domain not in found:
                found.append(domain)
    return found


async def evaluate(
    from_domain: str,
    spf: SpfResult,
    dkim: Sequence[DkimResult],
    resolver: Resolver,
    *,
    sample: Callable[[], float] = random.random,
) -> DmarcResult:
    """DMARC for one From domain, given the SPF and DKIM results."""
    try:
        record, inherited = await find_record(from_domain, resolver)
    except DnsTempError as e:
        return DmarcResult("temperror", from_domain, "none", "none", reason=str(e))
    if record is None:
        return DmarcResult("none", from_domain, "none", "none", reason="no DMARC record")
    spf_ok = spf.result == "pass" and aligned(spf.domain, from_domain, record.aspf)
    dkim_ok = any(r.result == "pass" and aligned(r.domain, from_domain, record.adkim) for r in dkim)
    # RFC 7489 §6.3 sp: for subdomains, when the record is the organisational domain's
    policy = (record.sp or record.p) if inherited else record.p
    if spf_ok or dkim_ok:
        return DmarcResult("pass", from_domain, policy, "none", spf_ok, dkim_ok)
    action = policy if sample() * 100 < record.pct else MILDER[policy]  # RFC 7489 §6.6.4
    reason = "no aligned SPF or DKIM pass"
    return DmarcResult("fail", from_domain, policy, action, False, False, reason)


async def check_dmarc(
    message: bytes,
    spf: SpfResult,
    dkim: Sequence[DkimResult],
    resolver: Resolver,
    *,
    sample: Callable[[], float] = random.random,
) -> DmarcResult:
    """DMARC for `message` (its header is enough), per the decisions in the module docstring."""
    domains = from_domains(message)
    if not domains:
        return DmarcResult("permerror", "", "none", "none", reason="no From domain")
    results = [await evaluate(d, spf, dkim, resolver, sample=sample) for d in domains]
    if len(results) == 1:
        return results[0]
    strictest = max(results, key=lambda r: (POLICIES.index(r.action), SEVERITY.index(r.result)))
    return DmarcResult(
        strictest.result,
        strictest.from_domain,
        strictest.policy,
        strictest.action,
        strictest.spf_aligned,
        strictest.dkim_aligned,
        reason="several From domains (RFC 7489 §6.6.1); the strictest outcome",
    )
