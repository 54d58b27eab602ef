"""The set of services a front-end is handed: one object, built once in `app.py`."""

from __future__ import annotations

from dataclasses import dataclass, field

from pillarbox.config import Config, nameservers
from pillarbox.mailauth.dns import DnspythonResolver, Resolver
from pillarbox.services.account_sessions import AccountSessions, SessionCounts
from pillarbox.services.accounts import AccountService
from pillarbox.services.auth import AuthService
from pillarbox.services.delivery import DeliveryService
from pillarbox.services.fetch_delivery import FetchDelivery
from pillarbox.services.fetch_now import FetchNow
from pillarbox.services.fetch_sources import KEY_FILE, FetchSourceService, SecretBox
from pillarbox.services.identities import IdentityService
from pillarbox.services.inbound_auth import InboundAuth
from pillarbox.services.outbound import OutboundService
from pillarbox.services.pop import PopService
from pillarbox.services.queue import QueueService
from pillarbox.services.submission import SubmissionService
from pillarbox.store.api import ChangeBus, Store, Subscription

# A session's feed of its account's changes (what `Services.changes.subscribe` returns),
# named here so front-ends, which never import the store, can type it.
__all__ = ["ChangeBus", "Services", "Subscription"]


@dataclass
class Services:
    store: Store
    changes: ChangeBus  # the bus the store publishes to; sessions subscribe here
    hostname: str
    auth: AuthService
    accounts: AccountService
    pop: PopService  # POP3 maildrops and their per-account lock
    delivery: DeliveryService  # recipient resolution and local delivery (MX and submission)
    submission: SubmissionService  # sender rules and header fixes for authenticated users
    inbound_auth: InboundAuth  # SPF, DKIM, DMARC on MX mail ([mailauth])
    resolver: Resolver  # DNS through [dns] nameservers
    queue: QueueService  # the outbound queue: the runner's claims, the operator's view
    outbound: OutboundService  # what follows a send: DSNs, retries, expiry; DKIM signing
    # The users' accounts elsewhere and the delivery of what is fetched from them (the
    # scheduler in `serve` stores through these, so sessions see it on `changes`).
    fetch_sources: FetchSourceService
    fetch_delivery: FetchDelivery
    identities: IdentityService  # the addresses, names and signatures users write as
    # IMAP/POP3 sessions per account and address, [limits] max_connections_per_account
    sessions: AccountSessions = field(default_factory=lambda: AccountSessions(0))
    # "Fetch now" for the webmail: the running fetcher registers itself here (app.py).
    fetch_now: FetchNow = field(default_factory=FetchNow)

    @classmethod
    def build(
        cls,
        store: Store,
        *,
        changes: ChangeBus,
        hostname: str,
        auth: AuthService,
        accounts: AccountService,
        config: Config,
        resolver: Resolver | None = None,
        session_counts: SessionCounts | None = None,
    ) -> Services:
        """`session_counts`: where sessions per account are counted (shared memory with
        several workers); this process by default."""
        delivery = DeliveryService(store, hostname=hostname)
        submission = SubmissionService(
            store, delivery, hostname=hostname, save_to_sent=config.smtp.save_submitted_to_sent
        )
        if resolver is None:
            resolver = DnspythonResolver(nameservers(config.dns), config.dns.timeout)
        checks = config.mailauth
        inbound_auth = InboundAuth(
            resolver,
            hostname,
            enabled=checks.enabled,
            dmarc_reject=checks.dmarc_reject,
            dmarc_quarantine=checks.dmarc_quarantine,
            trusted_networks=checks.trusted_networks,
        )
        queue = QueueService(store)
        outbound = OutboundService(
            store, delivery, queue, hostname=hostname, config=config.delivery
        )
        return cls(
            store=store,
            changes=changes,
            hostname=hostname,
            auth=auth,
            accounts=accounts,
            pop=PopService(store, node_id=config.node_name),
            delivery=delivery,
            submission=submission,
            inbound_auth=inbound_auth,
            resolver=resolver,
            queue=queue,
            outbound=outbound,
            fetch_sources=FetchSourceService(store, SecretBox(config.data_path / KEY_FILE)),
            fetch_delivery=FetchDelivery(store, hostname=hostname),
            identities=IdentityService(store, submission),
            sessions=AccountSessions(config.limits.max_connections_per_account, session_counts),
        )

    async def close(self) -> None:
        """Stop background work the services own (none yet)."""
