"""Address suggestions for the compose form (``/suggest?q=prefix`` → JSON strings).

The source is the account's own recent correspondence, read from the ENVELOPE stored at
delivery (no message file opened): the senders of the newest `RECENT` messages of
INBOX, and the To/Cc recipients of the newest `RECENT` of the Sent folder (RFC 6154
``\\Sent``). That is four store calls (`message_lists.page` per folder), so the list
is kept per account for `TTL` seconds: typing a name asks many times, and a
correspondent of the last minutes is rarely missed. Addresses are ranked by how often
they appear, then how recently; a prefix matches the start of the address or of any
word of the name, ignoring case. Never another account's mail: the folders are the
signed-in account's (`ctx.mailboxes`).

Must not: read message bodies, or return more than `LIMIT` entries.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.message.encoded_words import decode_header_value
from pillarbox.message.envelope_fields import EnvelopeAddress, read_envelope
from pillarbox.model import Mailbox
from pillarbox.services import message_lists
from pillarbox.services.context import Services
from pillarbox.services.mailbox import AccountMailboxes
from pillarbox.web.context import WebContext
from pillarbox.web.listing import address_text

RECENT = 500  # messages read per folder
TTL = 120.0  # seconds a correspondents list is reused
LIMIT = 10  # suggestions per answer
CACHED_ACCOUNTS = 1000
SPECIALS = set(',;<>"@()[]\\:')  # RFC 5322 §3.2.3: a name with these must be quoted


@dataclass(frozen=True, slots=True)
class Correspondent:
    name: str
    address: str
    words: tuple[str, ...]  # casefolded: the address and each word of the name

    def text(self) -> str:
        """``Name <address>``, the name quoted when it holds a comma or other specials
        (RFC 5322 §3.4), so a comma-separated list reads back as the same addresses."""
        if not self.name or self.name.casefold() == self.address.casefold():
            return self.address
        name = self.name
        if any(c in SPECIALS for c in name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.address}>"


def correspondent(address: EnvelopeAddress) -> Correspondent | None:
    text = address_text(address)
    if "@" not in text or address.host is None:
        return None  # a group marker (RFC 9051 §7.5.2) or no address at all
    name = decode_header_value(address.name).strip() if address.name else ""
    name = " ".join(name.split())
    folded = (text.casefold(), *(w.casefold().strip('"()') for w in name.split()))
    return Correspondent(name, text, folded)


async def collect(services: Services, mailboxes: AccountMailboxes, own: str) -> list[Correspondent]:
    """The account's correspondents, most frequent first, then most recent."""
    sources: list[tuple[Mailbox, bool]] = []  # (folder, its recipients rather than senders)
    for mailbox in await mailboxes.list_all():
        if mailbox.name == "INBOX":
            sources.append((mailbox, False))
        elif mailbox.special_use == "\\Sent":
            sources.append((mailbox, True))
    counts: dict[str, int] = {}
    latest: dict[str, tuple[float, Correspondent]] = {}
    for mailbox, sent in sources:
        _page, infos = await message_lists.page(services.store, mailbox, RECENT)
        for info in infos:
            envelope = read_envelope(info.envelope)
            addresses = [*envelope.to, *envelope.cc] if sent else envelope.from_
            when = info.internaldate.timestamp()
            for address in addresses:
                found = correspondent(address)
                if found is None or found.address.casefold() == own:
                    continue
                key = found.address.casefold()
                counts[key] = counts.get(key, 0) + 1
                prev = latest.get(key)
                if prev is None:
                    latest[key] = (when, found)
                elif found.name and (when >= prev[0] or not prev[1].name):
                    latest[key] = (max(when, prev[0]), found)  # the newest name given
                else:
                    latest[key] = (max(when, prev[0]), prev[1])
    return [
        entry
        for _key, (_when, entry) in sorted(
            latest.items(), key=lambda item: (-counts[item[0]], -item[1][0], item[0])
        )
    ]


def matches(entry: Correspondent, prefix: str) -> bool:
    return any(word.startswith(prefix) for word in entry.words)


def routes(ctx: WebContext) -> list[BaseRoute]:
    cache: OrderedDict[int, tuple[float, list[Correspondent]]] = OrderedDict()

    async def suggest(request: Request) -> Response:
        session = await ctx.signed_in(request)
        prefix = request.query_params.get("q", "").strip().casefold()[:200]
        account = session.account
        now = time.monotonic()
        cached = cache.get(account.id)
        if cached is None or cached[0] < now:
            entries = await collect(
                ctx.services, ctx.mailboxes(session), account.address.casefold()
            )
            cached = cache[account.id] = (now + TTL, entries)
            while len(cache) > CACHED_ACCOUNTS:
                cache.popitem(last=False)
        cache.move_to_end(account.id)
        found = [e.text() for e in cached[1] if prefix and matches(e, prefix)][:LIMIT]
        return JSONResponse(found, headers={"Cache-Control": "no-store"})

    return [Route("/suggest", suggest, methods=["GET"])]
