"""FETCH PREVIEW grammar (RFC 8970 §6): a plain attribute with optional "(LAZY)".

Pins: PREVIEW and PREVIEW (LAZY) give the same item, also followed by other items; an
unknown or empty modifier list is refused.
"""

from __future__ import annotations

import pytest

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.parser import ParseError, parse_command


@pytest.mark.parametrize(
    "wire",
    [b"a FETCH 1 PREVIEW", b"a FETCH 1 (PREVIEW (lazy))", b"a FETCH 1 (PREVIEW (LAZY) FLAGS)"],
)
def test_preview(wire: bytes) -> None:
    cmd = parse_command(wire)
    assert isinstance(cmd, c.Fetch)
    assert cmd.items[0] == c.FetchAttribute("PREVIEW")


@pytest.mark.parametrize("wire", [b"a FETCH 1 (PREVIEW (FUZZY))", b"a FETCH 1 (PREVIEW ())"])
def test_refused(wire: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(wire)
