"""Model-based test: random sequences of append / set_flags / expunge / copy / move /
reopen against a plain in-memory model of two mailboxes.

Pins down: UIDs are strictly ascending and never reused (even across close + reopen),
the UID map of COPY/MOVE, flags after every mode, \\Deleted-only expunge, and that
HIGHESTMODSEQ rises with every change and stays put when nothing changes.

The store is async; hypothesis drives it through a private event loop per example.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pillarbox.model import FlagMode
from pillarbox.store.api import Store
from pillarbox.store.changes import InProcessChangeBus
from tests.store.conftest import BACKENDS, dummy_meta, write_blob

T = TypeVar("T")

FLAGS = ["\\Seen", "\\Deleted", "\\Flagged", "$A", "$b"]
BOXES = ["INBOX", "Other"]
flag_sets = st.frozensets(st.sampled_from(FLAGS), max_size=3)
box_index = st.integers(0, len(BOXES) - 1)
picks = st.lists(st.integers(0, 30), max_size=6)


@dataclass
class ModelBox:
    uidnext: int = 1
    messages: dict[int, tuple[frozenset[str], bytes]] = field(default_factory=dict)
    modseq: int = 0


class StoreMachine(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="pillarbox-sm-"))
        self.store = self._open()
        self.model = [ModelBox() for _ in BOXES]
        self.ids: list[int] = []
        self.counter = 0
        self.run(self.store.add_domain("example.org"))
        account = self.run(self.store.add_account("sm@example.org", "h"))
        for i, name in enumerate(BOXES):
            box = self.run(self.store.get_mailbox(account.id, name))
            if box is None:
                box = self.run(self.store.create_mailbox(account.id, name))
            self.ids.append(box.id)
            self.model[i].modseq = box.highestmodseq

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def _open(self) -> Store:
        store = BACKENDS[self.backend](self.dir, InProcessChangeBus())
        self.run(store.open())
        return store

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _existing(self, b: int, chosen: list[int]) -> list[int]:
        uids = sorted(self.model[b].messages)
        return sorted({uids[i % len(uids)] for i in chosen}) if uids else []

    def _modseq_moved(self, b: int, changed: bool) -> None:
        status = self.run(self.store.mailbox_status(self.ids[b]))
        if changed:
            assert status.highestmodseq > self.model[b].modseq
        else:
            assert status.highestmodseq == self.model[b].modseq
        self.model[b].modseq = status.highestmodseq

    @rule(b=box_index, flags=flag_sets)
    def append(self, b: int, flags: frozenset[str]) -> None:
        self.counter += 1
        data = f"message {self.counter}".encode()
        blob = self.run(write_blob(self.store, data))
        result = self.run(self.store.append(self.ids[b], blob, dummy_meta(data), flags))
        box = self.model[b]
        assert result.uid == box.uidnext
        box.messages[result.uid] = (flags, data)
        box.uidnext += 1
        self._modseq_moved(b, True)

    @rule(b=box_index, chosen=picks, flags=flag_sets, mode=st.sampled_from(list(FlagMode)))
    def set_flags(self, b: int, chosen: list[int], flags: frozenset[str], mode: FlagMode) -> None:
        uids = [*self._existing(b, chosen), 10_000]  # an unknown UID is ignored
        result = self.run(self.store.set_flags(self.ids[b], uids, flags, mode))
        box = self.model[b]
        expected_changed = []
        for uid in uids[:-1]:
            old, data = box.messages[uid]
            new = old | flags if mode is FlagMode.ADD else old - flags
            if mode is FlagMode.REPLACE:
                new = flags
            if new != old:
                expected_changed.append(uid)
                box.messages[uid] = (new, data)
        assert [r.uid for r in result.changed] == expected_changed
        assert all(r.flags == box.messages[r.uid][0] for r in result.changed)
        self._modseq_moved(b, bool(expected_changed))

    @rule(b=box_index, chosen=picks, restrict=st.booleans())
    def expunge(self, b: int, chosen: list[int], restrict: bool) -> None:
        box = self.model[b]
        candidates = self._existing(b, chosen) if restrict else sorted(box.messages)
        gone = self.run(self.store.expunge(self.ids[b], candidates if restrict else None))
        expected = [u for u in candidates if "\\Deleted" in box.messages[u][0]]
        assert gone == expected
        for uid in gone:
            del box.messages[uid]
        self._modseq_moved(b, bool(gone))

    @rule(src=box_index, dst=box_index, chosen=picks, move=st.booleans())
    def copy_or_move(self, src: int, dst: int, chosen: list[int], move: bool) -> None:
        uids = self._existing(src, chosen)
        call = self.store.move if move else self.store.copy
        result = self.run(call(self.ids[src], uids, self.ids[dst]))
        s_box, d_box = self.model[src], self.model[dst]
        assert list(result.source_uids) == uids
        assert list(result.dest_uids) == list(range(d_box.uidnext, d_box.uidnext + len(uids)))
        copied = [s_box.messages[u] for u in uids]
        if move:
            for uid in uids:
                del s_box.messages[uid]
        for new, item in zip(result.dest_uids, copied, strict=True):
            d_box.messages[new] = item
        d_box.uidnext += len(uids)
        if src == dst:
            self._modseq_moved(src, bool(uids))
        else:
            self._modseq_moved(dst, bool(uids))
            self._modseq_moved(src, bool(uids) and move)

    @precondition(lambda self: self.counter > 0)
    @rule()
    def reopen(self) -> None:
        self.run(self.store.close())
        self.store = self._open()

    @invariant()
    def matches_model(self) -> None:
        for b, box_id in enumerate(self.ids):
            box = self.model[b]
            uids = self.run(self.store.uids(box_id))
            assert uids == sorted(box.messages)
            rows = self.run(self.store.fetch_flags(box_id, uids))
            assert {r.uid: r.flags for r in rows} == {u: f for u, (f, _) in box.messages.items()}
            status = self.run(self.store.mailbox_status(box_id))
            assert status.uidnext == box.uidnext
            if uids:  # spot-check the content of the newest message
                data = self.run(self.store.read_message(box_id, uids[-1]))
                assert data == box.messages[uids[-1]][1]


@pytest.mark.parametrize("backend_name", sorted(BACKENDS))
def test_store_state_machine(backend_name: str) -> None:
    """Random operation sequences keep the store equal to the model."""
    machine = type(f"{backend_name}Machine", (StoreMachine,), {"backend": backend_name})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=20,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
