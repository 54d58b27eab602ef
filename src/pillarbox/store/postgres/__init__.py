"""`PgStore`: the PostgreSQL backend of `store.api.Store`, for several nodes on one
database (docs/design.md, "PostgreSQL and several nodes").

Theory of operation (each part is told in full in the module that holds it):
  * Each contract method is one transaction on an asyncpg pool connection (`core`);
    UIDs and MODSEQs come from per-mailbox counters updated under the mailbox row lock
    in that transaction, so they become visible in ascending order on every node.
  * Message bytes live in the database as fixed-size chunks (`blobs`), so a node needs
    no shared disk; reads stream chunk by chunk and hold no connection between reads.
  * Search is substring matching over casefolded text with pg_trgm indexes (`search`),
    giving the same results as the SQLite backend.
  * Changes are NOTIFYed inside their transaction (`notify`) and turned back into events
    on the other nodes by `bus.PgChangeRelay`, which reads the details by MODSEQ.

The modules: `core` (the base class: lifecycle, pool, transactions), one mixin per
concern (as in the SQLite backend), `schema` (forward-only migrations under an
advisory lock). Each mixin imports the base, never this class.
"""

from __future__ import annotations

from pillarbox.store.postgres.accounts import AccountsMixin
from pillarbox.store.postgres.blobs import BlobsMixin
from pillarbox.store.postgres.cluster_state import ClusterStateMixin
from pillarbox.store.postgres.dkim_keys import DkimKeysMixin
from pillarbox.store.postgres.fetch_sources import FetchSourcesMixin
from pillarbox.store.postgres.identities import IdentitiesMixin
from pillarbox.store.postgres.image_senders import ImageSendersMixin
from pillarbox.store.postgres.janitor import JanitorMixin
from pillarbox.store.postgres.listing import ListingMixin
from pillarbox.store.postgres.mailboxes import MailboxesMixin
from pillarbox.store.postgres.messages import MessagesMixin
from pillarbox.store.postgres.outbound_queue import OutboundQueueMixin
from pillarbox.store.postgres.reading import ReadingMixin
from pillarbox.store.postgres.sorting import SortingMixin


class PgStore(
    AccountsMixin,
    MailboxesMixin,
    BlobsMixin,
    MessagesMixin,
    ReadingMixin,
    ListingMixin,
    SortingMixin,
    OutboundQueueMixin,
    DkimKeysMixin,
    FetchSourcesMixin,
    IdentitiesMixin,
    ImageSendersMixin,
    ClusterStateMixin,
    JanitorMixin,
):
    """The PostgreSQL implementation of `store.api.Store` (see the module docstring)."""


__all__ = ["PgStore"]
