"""What a parsed message offers THREADID (RFC 8474 §5.2): `parse` keeps References and
the first In-Reply-To msg-id, and `objectids.thread_keys` orders them parent first."""

from __future__ import annotations

from pillarbox.message import parse
from pillarbox.model import objectids


def test_parse_keeps_the_first_in_reply_to_id() -> None:
    meta = parse(
        b"Message-ID: <me@x>\r\nIn-Reply-To: Your note <a@x> of Monday <b@x>\r\n"
        b"References: <r1@x>\r\n  <r2@x> junk\r\n\r\nbody\r\n"
    )
    assert meta.in_reply_to == "<a@x>"
    assert meta.references == "<r1@x> <r2@x>"
    assert objectids.thread_keys(meta) == ("<r2@x>", "<r1@x>", "<me@x>")


def test_in_reply_to_counts_only_without_references() -> None:
    """RFC 5256 §3 step 1: In-Reply-To is read when References has no valid msg-id."""
    meta = parse(b"Message-ID: (c) <me@x>\r\nIn-Reply-To: <a@x>\r\n\r\n")
    assert objectids.thread_keys(meta) == ("<a@x>", "<me@x>")
    assert objectids.thread_keys(parse(b"Subject: none\r\n\r\n")) == ()


def test_long_references_keep_the_root_and_the_newest() -> None:
    refs = " ".join(f"<{i}@x>" for i in range(100))
    keys = objectids.thread_keys(parse(f"References: {refs}\r\n\r\n".encode()))
    assert len(keys) == objectids.MAX_THREAD_KEYS - 1
    assert keys[0] == "<99@x>" and keys[-1] == "<0@x>" and "<50@x>" not in keys


def test_thread_object_ids_round_trip() -> None:
    value = objectids.thread_object_id(2**63 - 1)
    assert value == "T7fffffffffffffff"
    assert objectids.thread_of_object_id(value) == 2**63 - 1
    assert objectids.thread_of_object_id("M7fffffffffffffff") is None
    assert objectids.thread_of_object_id("T1") is None
