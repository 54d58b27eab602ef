"""The THREAD algorithms of RFC 5256 §3: ORDEREDSUBJECT and REFERENCES, as pure functions.

Theory of operation: callers hand in one `ThreadInput` per message (its number in
mailbox order, sent date, base subject and whether the subject marked a reply, its own
Message-ID and the IDs it refers to) and get back the thread forest as `ThreadNode`s:
a node is a message (`uid`) or a dummy (`uid` None) holding only children. Rendering
to ``* THREAD`` syntax is the front-end's job (`thread_list` gives the RFC's nesting).

ORDEREDSUBJECT groups by base subject; each group is a thread whose first message (by
sent date) is the parent of all the others; threads are ordered by their first
message's sent date. REFERENCES is the RFC's adaptation of JWZ's algorithm, step by
step (numbers in the comments are the RFC's). Ties on sent date are broken by mailbox
order, as the RFC says.

Must not: touch the store or the protocol; it is plain computation over plain values.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ThreadInput:
    """One message as the algorithms see it.

    `order` is its position in the mailbox (the UID does: UIDs ascend with sequence
    numbers); `sent` the sent date as a timestamp (RFC 5256 §2.2: INTERNALDATE when the
    Date: field is missing or unparsable); `subject` the base subject (§2.1) and
    `reply` whether extracting it removed a reply/forward marker; `message_id` None when
    the message has no valid one; `references` the References msg-ids, or the first
    In-Reply-To msg-id when References holds none (§3 REFERENCES step 1).
    """

    uid: int
    sent: float
    subject: str
    reply: bool = False
    message_id: str | None = None
    references: tuple[str, ...] = ()


@dataclass(eq=False, slots=True)
class ThreadNode:
    """A message (`message` set) or a dummy placeholder (`message` None) in a thread."""

    message: ThreadInput | None = None
    children: list[ThreadNode] = field(default_factory=list)
    parent: ThreadNode | None = None

    @property
    def uid(self) -> int | None:
        return None if self.message is None else self.message.uid


def _date_key(message: ThreadInput) -> tuple[float, int]:
    return (message.sent, message.uid)


# ------------------------------------------------------------------ ORDEREDSUBJECT


def ordered_subject(messages: Sequence[ThreadInput]) -> list[ThreadNode]:
    """RFC 5256 §3 ORDEREDSUBJECT: sort by (base subject, sent date), one thread per
    subject whose first message is the parent of the rest; threads by first date."""
    ordered = sorted(messages, key=lambda m: (m.subject, m.sent, m.uid))
    threads: list[ThreadNode] = []
    current: ThreadNode | None = None
    for message in ordered:
        if current is None or current.message is None or current.message.subject != message.subject:
            current = ThreadNode(message)
            threads.append(current)
        else:
            current.children.append(ThreadNode(message, parent=current))
    threads.sort(key=lambda t: _date_key(_first_message(t)))
    return threads


# ------------------------------------------------------------------ REFERENCES


class _Containers:
    """The ID table of step (1): one container per Message-ID seen."""

    def __init__(self) -> None:
        self.by_id: dict[str, ThreadNode] = {}
        self.unique = 0

    def get(self, message_id: str) -> ThreadNode:
        node = self.by_id.get(message_id)
        if node is None:
            node = self.by_id[message_id] = ThreadNode()
        return node

    def for_message(self, message: ThreadInput) -> ThreadNode:
        """The container of `message`: its Message-ID's, unless it has none or the ID
        already belongs to another message — then a unique one (step (1))."""
        if message.message_id is not None:
            node = self.get(message.message_id)
            if node.message is None:
                node.message = message
                return node
        self.unique += 1
        node = ThreadNode(message)
        self.by_id[f"\x00unique-{self.unique}"] = node
        return node


def _reachable(start: ThreadNode, target: ThreadNode) -> bool:
    """`target` is `start` or one of its descendants."""
    stack = [start]
    while stack:
        node = stack.pop()
        if node is target:
            return True
        stack.extend(node.children)
    return False


def _link(parent: ThreadNode, child: ThreadNode) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def references(messages: Sequence[ThreadInput]) -> list[ThreadNode]:
    """RFC 5256 §3 REFERENCES."""
    table = _Containers()
    for message in sorted(messages, key=lambda m: m.uid):
        node = table.for_message(message)
        refs = [table.get(ref) for ref in message.references]
        # (1)(A) link the references in order, never changing an existing link and
        # never making a loop
        for parent, child in itertools.pairwise(refs):
            if child.parent is None and parent is not child and not _reachable(child, parent):
                _link(parent, child)
        # (1)(B) the last reference is the message's parent (replacing any parent it had
        # from a truncated References elsewhere), unless that makes a loop
        last = refs[-1] if refs else None
        if last is None:
            if node.parent is not None:
                node.parent.children.remove(node)
                node.parent = None
        elif last is not node and not _reachable(node, last):
            _link(last, node)
    # (2) the root set; (3) the ID table is not needed any more
    roots = [node for node in table.by_id.values() if node.parent is None]
    # (4) prune dummies
    roots = _prune(roots, at_root=True)
    for node in roots:
        node.parent = None
    # (5) gather root-level threads with the same base subject
    roots = _gather_by_subject(roots)
    # (6) sort siblings by sent date, deepest level first
    _sort_siblings(roots)
    return roots


def _prune(nodes: list[ThreadNode], *, at_root: bool) -> list[ThreadNode]:
    """(4): drop dummies without children; replace a dummy by its children, except at
    the root when it has more than one (they would become separate threads)."""
    out: list[ThreadNode] = []
    for node in nodes:
        node.children = _prune(node.children, at_root=False)
        for child in node.children:
            child.parent = node
        if node.message is None:
            if not node.children:
                continue
            if not at_root or len(node.children) == 1:
                out.extend(node.children)
                continue
        out.append(node)
    return out


def _subject_of(node: ThreadNode) -> ThreadInput | None:
    """(5)(A): the message whose subject a root stands for (a dummy's first child's)."""
    if node.message is not None:
        return node.message
    return node.children[0].message if node.children else None


def _gather_by_subject(roots: list[ThreadNode]) -> list[ThreadNode]:
    table: dict[str, ThreadNode] = {}
    # (5)(B) one container per base subject: prefer a dummy, then a non-reply
    for node in roots:
        message = _subject_of(node)
        if message is None or not message.subject:
            continue
        found = table.get(message.subject)
        if found is None:
            table[message.subject] = node
            continue
        found_message = _subject_of(found)
        if (node.message is None and found.message is not None) or (
            found_message is not None
            and found_message.reply
            and not message.reply
            and found.message is not None
            and node.message is not None
        ):
            table[message.subject] = node
    # (5)(C) merge each other root with the same subject into the table's container
    out: list[ThreadNode] = []
    for node in roots:
        message = _subject_of(node)
        found = table.get(message.subject) if message is not None and message.subject else None
        if found is None or found is node:
            out.append(node)
            continue
        if found.message is None and node.message is None:
            for child in node.children:  # (i) both dummies: one takes the other's children
                child.parent = found
                found.children.append(child)
            node.children = []
        elif found.message is None:
            _link(found, node)  # (ii) the message goes under the dummy
        elif node.message is None:
            _replace(out, table, found, node)  # (ii) the other way round
            _link(node, found)
        elif not found.message.reply and node.message.reply:
            _link(found, node)  # (iii) a reply goes under the non-reply
        else:
            dummy = ThreadNode()  # (iv) both under a new dummy, in the table's place
            _replace(out, table, found, dummy)
            _link(dummy, found)
            _link(dummy, node)
    return out


def _replace(
    out: list[ThreadNode], table: dict[str, ThreadNode], old: ThreadNode, new: ThreadNode
) -> None:
    """Put `new` where `old` was, in the output roots and in the subject table."""
    for i, node in enumerate(out):
        if node is old:
            out[i] = new
            break
    else:
        out.append(new)
    for subject, node in table.items():
        if node is old:
            table[subject] = new


def _first_message(node: ThreadNode) -> ThreadInput:
    """The message a node sorts by: its own, or (a dummy) its first child's, recursively."""
    while node.message is None:
        node = node.children[0]
    return node.message


def _sort_siblings(nodes: list[ThreadNode]) -> None:
    """(6): children before parents, so a dummy sorts by its already-first child."""
    for node in nodes:
        _sort_siblings(node.children)
    nodes.sort(key=lambda n: _date_key(_first_message(n)))


# ------------------------------------------------------------------ output shape


def thread_list(node: ThreadNode, number: dict[int, int]) -> bytes:
    """One ``thread-list`` (RFC 5256 §5) without its outer parentheses: a chain of
    single children is a run of numbers, several children are nested lists.
    `number` maps UIDs to what the client is sent (sequence numbers or UIDs)."""
    parts: list[bytes] = []
    while True:
        if node.message is not None:
            parts.append(b"%d" % number[node.message.uid])
        if len(node.children) == 1:
            node = node.children[0]
            continue
        break
    if node.children:
        parts.append(b"".join(b"(" + thread_list(c, number) + b")" for c in node.children))
    return b" ".join(parts)
