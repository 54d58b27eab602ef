"""The base subject of RFC 5256 §2.1, step by step, and whether it marks a reply.

Pins each step: whitespace runs collapse (1); "(fwd)" and spaces trail off (2); "Re:",
"Fw:", "Fwd:" with optional [blob]s before and a [blob] inside are leaders (3); a
leading [blob] goes unless nothing would be left (4); (3)/(4) repeat (5); "[fwd: ...]"
unwraps and restarts (6); comparison is i;ascii-casemap (upper-case ASCII only).
"""

from __future__ import annotations

import pytest

from pillarbox.message.base_subject import base_subject, casemap, is_reply_or_forward


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("hello", "HELLO", False),
        ("  hello\t  world  ", "HELLO WORLD", False),  # (1), (3) WSP leader, (2)
        ("hello (fwd)", "HELLO", True),  # (2)
        ("hello (FWD) (fwd)  ", "HELLO", True),
        ("Re: hello", "HELLO", True),  # (3)
        ("RE: Re: re:hello", "HELLO", True),
        ("Fw: hello", "HELLO", True),
        ("FWD: hello", "HELLO", True),
        ("Re[2]: hello", "HELLO", True),  # subj-refwd with a blob before ":"
        ("[list] Re: hello", "HELLO", True),  # blobs before subj-refwd
        ("[list] hello", "HELLO", False),  # (4)
        ("[list]", "[LIST]", False),  # (4): nothing would be left, keep it
        ("[a] [b] Re: [c] x", "X", True),  # (5)
        ("[fwd: Re: hi]", "HI", True),  # (6)
        ("[Fwd: [fwd: hi (fwd)]]", "HI", True),
        ("Reply to this", "REPLY TO THIS", False),  # "Re" without ":" is not a leader
        ("café", "CAFé", False),  # i;ascii-casemap leaves non-ASCII alone
        ("", "", False),
    ],
)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject) == base
    assert is_reply_or_forward(subject) is reply


def test_casemap_is_ascii_only() -> None:
    """RFC 4790 §9.2: a-z become A-Z; everything else, including [\\]^_`, stays."""
    assert casemap("az[\\]^_`AZ é") == "AZ[\\]^_`AZ é"
