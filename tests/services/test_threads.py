"""The THREAD algorithms of RFC 5256 §3 as pure functions, with the RFC's examples.

Pins: the output shape of RFC 5256 §4 ("(2)(3 6 (4 23)(44 7 96))": a chain of single
children is a run, several children nest); REFERENCES steps (1) linking by References,
(1)(B) the last reference as parent, loops refused, duplicate and missing Message-IDs
made unique; (4) dummies pruned (kept at the root only with several children); (5)
root threads with one base subject gathered (a reply under the non-reply, two
non-replies under a new dummy); (6) siblings by sent date, ties in mailbox order;
ORDEREDSUBJECT one thread per base subject with the first message the parent of all.
"""

from __future__ import annotations

from pillarbox.services.threads import (
    ThreadInput,
    ThreadNode,
    ordered_subject,
    references,
    thread_list,
)


def render(threads: list[ThreadNode]) -> bytes:
    numbers: dict[int, int] = {}

    def collect(node: ThreadNode) -> None:
        if node.uid is not None:
            numbers[node.uid] = node.uid
        for child in node.children:
            collect(child)

    for t in threads:
        collect(t)
    return b"".join(b"(" + thread_list(t, numbers) + b")" for t in threads)


def msg(
    uid: int, *refs: int, subject: str = "TOPIC", reply: bool = False, sent: float | None = None
) -> ThreadInput:
    return ThreadInput(
        uid,
        float(uid if sent is None else sent),
        subject,
        reply,
        f"<{uid}@x>",
        tuple(f"<{r}@x>" for r in refs),
    )


def test_rfc_5256_example_shape() -> None:
    """RFC 5256 §4: ``(2)(3 6 (4 23)(44 7 96))``."""
    messages = [
        msg(2, subject="OTHER"),
        msg(3),
        msg(6, 3, reply=True),
        msg(4, 3, 6, reply=True),
        msg(23, 3, 6, 4, reply=True),
        msg(44, 3, 6, reply=True),
        msg(7, 3, 6, 44, reply=True),
        msg(96, 3, 6, 44, 7, reply=True),
    ]
    assert render(references(messages)) == b"(2)(3 6 (4 23)(44 7 96))"


def test_references_link_through_missing_messages() -> None:
    """(1)(A): References link even through messages not in the set; (4) a dummy in
    the middle of a thread is replaced by its children."""
    messages = [msg(1), msg(3, 1, 2, reply=True), msg(4, 1, 2, reply=True)]
    assert render(references(messages)) == b"(1 (3)(4))"


def test_dummy_root_kept_with_several_children_only() -> None:
    """(4)(B): at the root a dummy stays only if it has more than one child."""
    two = [msg(1, 99, subject="A"), msg(2, 99, subject="B")]
    assert render(references(two)) == b"((1)(2))"
    one = [msg(1, 99, subject="A")]
    assert render(references(one)) == b"(1)"


def test_last_reference_is_the_parent() -> None:
    """(1)(B): a truncated References elsewhere does not override the message's own."""
    messages = [
        msg(1, subject="A"),
        msg(2, subject="B"),
        msg(3, 2, subject="B", reply=True),
        msg(5, 1, 3, subject="B", reply=True),
    ]
    # 5's References say 1 -> 3 -> 5, but 3 already has parent 2: that link stays (1)(A)
    assert render(references(messages)) == b"(1)(2 3 5)"


def test_loops_are_refused() -> None:
    """Messages referring to each other end up in one thread, without hanging."""
    a = ThreadInput(1, 1.0, "X", False, "<a@x>", ("<b@x>",))
    b = ThreadInput(2, 2.0, "Y", False, "<b@x>", ("<a@x>",))
    assert render(references([a, b])) in (b"(1 2)", b"(2 1)")
    selfref = ThreadInput(3, 3.0, "Z", False, "<c@x>", ("<c@x>",))
    assert render(references([selfref])) == b"(3)"


def test_duplicate_and_missing_message_ids_are_unique() -> None:
    """(1): a second message with the same Message-ID, or one with none, is a message
    of its own, not merged into the first."""
    a = ThreadInput(1, 1.0, "A", False, "<same@x>")
    b = ThreadInput(2, 2.0, "B", False, "<same@x>")
    c = ThreadInput(3, 3.0, "C", False, None)
    assert render(references([a, b, c])) == b"(1)(2)(3)"


def test_subject_gathering() -> None:
    """(5): roots with one base subject join: a reply goes under the non-reply, two
    non-replies go under a new dummy (RFC 5256 §4 example's ``((170)(179))``)."""
    reply = [msg(1, subject="S"), ThreadInput(2, 2.0, "S", True, "<2@x>")]
    assert render(references(reply)) == b"(1 2)"
    both = [msg(1, subject="S"), msg(2, subject="S")]
    assert render(references(both)) == b"((1)(2))"
    empty = [msg(1, subject=""), msg(2, subject="")]
    assert render(references(empty)) == b"(1)(2)"  # an empty subject gathers nothing


def test_siblings_by_sent_date_then_mailbox_order() -> None:
    """(6): children and threads by sent date; equal dates in mailbox order."""
    messages = [
        msg(1, subject="A", sent=10),
        msg(2, 1, subject="A", reply=True, sent=30),
        msg(3, 1, subject="A", reply=True, sent=20),
        msg(4, subject="B", sent=5),
        msg(5, 1, subject="A", reply=True, sent=20),
    ]
    assert render(references(messages)) == b"(4)(1 (3)(5)(2))"


def test_ordered_subject() -> None:
    """ORDEREDSUBJECT: by base subject, first message the parent of the rest (the RFC
    example's ``(174 (175)(176))`` and ``(194 195)``); threads by first sent date."""
    messages = [
        msg(1, subject="B", sent=3),
        msg(2, subject="A", sent=1),
        msg(3, subject="B", sent=4),
        msg(4, subject="A", sent=2),
        msg(5, subject="A", sent=5),
        msg(6, subject="C", sent=0),
    ]
    assert render(ordered_subject(messages)) == b"(6)(2 (4)(5))(1 3)"
