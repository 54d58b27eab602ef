"""`SqliteStore`: the embedded default backend of `store.api.Store`.

Theory of operation (each part is told in full in the module that holds it):
  * One writer thread owns the only write connection (`writer`). Every mutating method
    becomes an operation put on its queue; the writer runs all queued operations in ONE
    transaction, each inside its own SAVEPOINT, commits with one fsync for the whole
    batch (group commit), unlinks message files whose last row went, then hands results
    and change events back to the event loop in commit order, where they are published
    on the change bus before each caller hears back (`core`).
  * WAL checkpoints run in a thread of their own on a connection of their own
    (`checkpointer`), so the writer's commits never pay for them.
  * Readers are a small pool of threads, each with its own connection (`readers`); in
    WAL mode a reader works on a snapshot and never waits for the writer.
  * Message bytes live in files (`blobs`); a row refers to a file only once the file is
    durable, and a file with no row is removed when the store opens.
  * Everything derived from the message bytes (size, precomputed IMAP bytes, search
    columns, FTS text) is stored once per blob, so COPY shares it along with the file
    (`message_rows`). The substring index has a file and a writer thread of its own
    (`text_index`); the search SQL is built in `search`, the schema migrated by
    `schema` from `migrations/`.

The modules: `core` (the base class: lifecycle, plumbing, blobs), one mixin per concern
(`accounts`, `mailboxes`, `messages`, `reading`, `outbound_queue`, `dkim_keys`,
`fetch_sources`, `identities`, `image_senders`), the
row helpers they share (`message_rows`, `rows`, `flags`), and the threads (`writer`,
`checkpointer`, `readers`, `batches`). Each mixin imports the base, never this class.

Must not: block the event loop (sqlite and file calls happen in threads), let a sqlite3
exception escape (they become `store.errors`), or know about protocols and sessions.
"""

from __future__ import annotations

from pillarbox.store.sqlite.accounts import AccountsMixin
from pillarbox.store.sqlite.cluster_state import ClusterStateMixin
from pillarbox.store.sqlite.core import DB_NAME
from pillarbox.store.sqlite.dkim_keys import DkimKeysMixin
from pillarbox.store.sqlite.fetch_sources import FetchSourcesMixin
from pillarbox.store.sqlite.identities import IdentitiesMixin
from pillarbox.store.sqlite.image_senders import ImageSendersMixin
from pillarbox.store.sqlite.listing import ListingMixin
from pillarbox.store.sqlite.mailboxes import MailboxesMixin
from pillarbox.store.sqlite.messages import MessagesMixin
from pillarbox.store.sqlite.outbound_queue import OutboundQueueMixin
from pillarbox.store.sqlite.reading import ReadingMixin
from pillarbox.store.sqlite.sorting import SortingMixin


class SqliteStore(
    AccountsMixin,
    MailboxesMixin,
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
):
    """The SQLite implementation of `store.api.Store` (see the module docstring)."""


__all__ = ["DB_NAME", "SqliteStore"]
