"""Client text made safe for replies (printable ASCII) and logs (escaped controls)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pillarbox.rules.printable import escape_controls, printable_ascii


def test_examples() -> None:
    assert printable_ascii("mail\x1b[0m.test") == "mail?[0m.test"
    assert printable_ascii("caf\u00e9") == "caf?"
    assert escape_controls("a\r\nb\x1bc\u00e9\td") == "a\\x0d\\x0ab\\x1bc\u00e9\td"


@given(st.text())
def test_printable_ascii_is_printable_and_as_long(text: str) -> None:
    out = printable_ascii(text)
    assert len(out) == len(text)
    assert all(" " <= c <= "~" for c in out)


@given(st.text())
def test_escaped_text_has_no_line_breaks_or_controls(text: str) -> None:
    out = escape_controls(text)
    assert not any((ord(c) < 0x20 and c != "\t") or 0x7F <= ord(c) <= 0x9F for c in out)
