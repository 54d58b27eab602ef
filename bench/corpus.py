"""Deterministic test messages: the same bytes for both sides, on every run.

Bodies are slices of one block of pseudo-random words made from a fixed seed, so building
5,000 messages costs almost nothing and the content compresses and searches like text.
Larger messages are multipart/mixed with a base64 attachment, so BODYSTRUCTURE has depth.

Every message carries tokens that the search timings look for, each in a known share of
messages: ``subject_token(k)`` in the Subject, ``sender_address(k)`` in From, and
``body_token(k)`` in the text.
"""

from __future__ import annotations

import base64
import random
from functools import lru_cache

_VOCABULARY = (
    "mail server queue folder message sender recipient header body flag search index "
    "store fetch select append expunge archive draft report quarterly budget meeting "
    "invoice project schedule update review release summary travel lunch notes agenda the "
    "and of to in for on with at by from about into over after under again further then "
    "once here there when where why how all any both each few more most other some such "
    "only own same so than too very can will just should now alpha bravo charlie delta "
    "echo foxtrot golf hotel india juliet kilo lima mike november oscar papa"
)
WORDS = tuple(_VOCABULARY.split())

SENDERS = 50
SUBJECT_TOKENS = 100
BODY_TOKENS = 1000
DATE = "Mon, 02 Jun 2025 10:00:00 +0000"


def sender_address(index: int) -> str:
    return f"sender{index % SENDERS:02d}@senders.example.test"


def subject_token(index: int) -> str:
    return f"topic{index % SUBJECT_TOKENS:03d}x"


def body_token(index: int) -> str:
    return f"kw{index % BODY_TOKENS:04d}q"


@lru_cache(maxsize=1)
def _text_block() -> str:
    """About 2 MB of lines of pseudo-random words, at most 72 characters each."""
    rng = random.Random(20250602)
    lines: list[str] = []
    size = 0
    while size < 2_000_000:
        words: list[str] = []
        length = 0
        while length < 60:
            word = rng.choice(WORDS)
            words.append(word)
            length += len(word) + 1
        line = " ".join(words)
        lines.append(line)
        size += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def _text(rng: random.Random, size: int) -> str:
    block = _text_block()
    size = min(size, len(block) - 1)
    start = block.find("\r\n", rng.randrange(0, len(block) - size)) + 2
    end = block.find("\r\n", start + size)
    return block[start : end + 2] if end > 0 else block[start:]


def make_message(index: int, recipient: str, size: int, *, seed: int = 0) -> bytes:
    """Message number *index* to *recipient*, about *size* bytes long, fully deterministic."""
    rng = random.Random(seed * 1_000_003 + index)
    sender = sender_address(index)
    headers = (
        f"From: Sender {index % SENDERS} <{sender}>\r\n"
        f"To: <{recipient}>\r\n"
        f"Subject: Bench message {index} about {subject_token(index)} {rng.choice(WORDS)}\r\n"
        f"Date: {DATE}\r\n"
        f"Message-ID: <bench-{seed}-{index}@senders.example.test>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    intro = f"Hello,\r\n\r\nReference code {body_token(index)} for this message.\r\n\r\n"
    if size < 8_000:
        body = intro + _text(rng, max(0, size - len(headers) - len(intro) - 60))
        text = headers + "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
        return text.encode("ascii")
    boundary = f"=_bench_{seed}_{index}"
    text_part = intro + _text(rng, size // 4)
    raw = rng.randbytes(max(0, (size - len(text_part) - len(headers) - 400) * 3 // 4))
    encoded = base64.encodebytes(raw).decode("ascii").replace("\n", "\r\n")
    text = (
        headers + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        "This is a multi-part message in MIME format.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"{text_part}"
        f"--{boundary}\r\n"
        f'Content-Type: application/octet-stream; name="data-{index}.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="data-{index}.bin"\r\n\r\n'
        f"{encoded}"
        f"--{boundary}--\r\n"
    )
    return text.encode("ascii")


def sizes(count: int, low: int, high: int, *, seed: int = 0) -> list[int]:
    """*count* message sizes spread uniformly over [low, high] bytes, deterministic."""
    rng = random.Random(seed * 7919 + count)
    return [rng.randint(low, high) for _ in range(count)]
