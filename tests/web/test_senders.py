"""`web.senders.sender_choices`: the From chooser's addresses and its default.

Pins: the account's own address first, then its aliases grouped by domain; the default
is the first preferred address that is offered (a reply's original recipient), else the
account's own; an address not offered is never selected.
"""

from __future__ import annotations

from pillarbox.web.senders import sender_choices


def test_own_address_first_then_aliases_by_domain() -> None:
    allowed = {"alice@a.test", "zed@a.test", "info@b.test", "boss@a.test"}
    choices, selected = sender_choices("alice@a.test", allowed)
    assert choices == ["alice@a.test", "boss@a.test", "zed@a.test", "info@b.test"]
    assert selected == "alice@a.test"


def test_preferred_address_is_selected_only_if_offered() -> None:
    allowed = {"alice@a.test", "info@b.test"}
    assert sender_choices("alice@a.test", allowed, ["carol@c.test", "info@b.test"])[1] == (
        "info@b.test"
    )
    assert sender_choices("alice@a.test", allowed, ["team@a.test"])[1] == "alice@a.test"
