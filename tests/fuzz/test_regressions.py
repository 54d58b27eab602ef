"""Inputs that once broke a fuzz target, run as plain tests (no Atheris needed).

Each case is kept byte for byte as it was found; the test fails the way the fuzzer did
(an exception, or more than the fuzzer's 1 s of CPU time for one input).
"""

from __future__ import annotations

import random
import re
import time

import pytest

from pillarbox.model import HIERARCHY_SEPARATOR
from pillarbox.server.imap import names

from .targets import TARGETS

# (target, input, what it was)
CASES = [
    (
        "list_pattern",
        b"\x00" + b"*a" * 7 + b"b\x00" + b"a" * 60,
        "LIST pattern as a backtracking regex: 2.8 s of CPU for 7 wildcards (RFC 9051 §6.3.9)",
    ),
]


@pytest.mark.parametrize(("name", "data", "what"), CASES, ids=[c[2][:40] for c in CASES])
def test_found_input(name: str, data: bytes, what: str) -> None:
    start = time.process_time()
    TARGETS[name](data)
    assert time.process_time() - start < 1.0, what


def test_list_pattern_time_does_not_grow_with_wildcards() -> None:
    """The same bug without the target around it, so that the old code fails in seconds
    instead of never returning: 7 wildcards took 2.8 s of CPU, 8 took 19 s."""
    for wildcards in (7, 8, 40):
        matcher = names.list_pattern("", "*a" * wildcards + "b")
        start = time.process_time()
        assert not matcher.match("a" * 60)
        assert names.list_pattern("", "*a" * wildcards + "%").match("a" * 60)
        assert time.process_time() - start < 0.5, wildcards


def _reference(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 9051 §6.3.9 as the regex the server used to compile (right, but exponential)."""
    full = pattern
    if reference and not pattern.startswith(HIERARCHY_SEPARATOR):
        full = reference + pattern
    prefix = ""
    if full[:5].upper() == "INBOX":
        prefix, full = "(?i:INBOX)", full[5:]
    sep = re.escape(HIERARCHY_SEPARATOR)
    body = "".join(
        ".*" if ch == "*" else f"[^{sep}]*" if ch == "%" else re.escape(ch) for ch in full
    )
    return re.compile(prefix + body + r"\Z", re.DOTALL)


def test_list_pattern_agrees_with_the_regex_it_replaced() -> None:
    """The linear matcher says what the regex said, on small patterns where the regex
    is still fast: wildcards, runs of them, separators, INBOX in any case."""
    rng = random.Random(9051)
    alphabet = ["a", "b", "/", "*", "%", "INBOX", "inbox", "é"]
    for _ in range(20_000):
        pattern = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        reference = rng.choice(["", "", "a/", "INBOX"])
        name = "".join(rng.choice(["a", "b", "/", "é", "INBOX", "Inbox"]) for _ in range(5))
        name = name[: rng.randint(0, len(name))]
        expected = _reference(reference, pattern).match(name) is not None
        assert names.list_pattern(reference, pattern).match(name) == expected, (
            reference,
            pattern,
            name,
        )
