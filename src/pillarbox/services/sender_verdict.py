"""Whether a stored message's sender was verified when it arrived: the webmail's mark.

The verdict is read back from the Authentication-Results field our own MX added at
delivery (`services.inbound_auth`), never recomputed (DNS and keys change; the verdict
at arrival is the one that counts). Only fields whose authserv-id is our host name are
believed (RFC 8601 §5: anyone can write one; the reader ignores those it did not add),
and of those only the ones above the first Received field. Our MX puts its field above
the Received line it adds, and removes fields claiming our name from what it is sent;
but mail that does not pass that check (submitted by a local user, fetched from another
provider, relayed by a trusted network) keeps whatever the sender wrote, and every one
of those paths prepends our Received line, so a field the sender wrote sits below it.
A message APPENDed over IMAP has no such line: the account's own client put it there.

Verified means DMARC passed (RFC 7489: an aligned SPF or DKIM pass for the From
domain), or a DKIM signature passed whose ``header.d`` is aligned, relaxed (RFC 7489
§3.1.1), with the one domain in From. An SPF pass alone is not enough: it speaks for
the envelope sender, which the reader does not see.

Must not: query DNS, or trust an Authentication-Results field of another authserv-id.
"""

from __future__ import annotations

from pillarbox.mailauth.dmarc import aligned, from_domains
from pillarbox.mailauth.results import own_results


def verified_sender(header: bytes, hostname: str) -> bool:
    """`header` (the message's header block, or the whole message) carries our verdict
    that its From domain was authenticated."""
    ours = own_results(header, hostname, above="received")
    if not ours:
        return False
    newest = ours[0]
    if any(r.method == "dmarc" and r.result == "pass" for r in newest.results):
        return True
    domains = from_domains(header)
    if len(domains) != 1:
        return False
    return any(
        r.method == "dkim" and r.result == "pass" and aligned(r.get("header.d"), domains[0], "r")
        for r in newest.results
    )
