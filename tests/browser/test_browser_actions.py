"""Acting on messages in the list, in a real browser (static/list.js), checked over IMAP.

Pins: the toolbar's buttons wait for a selection; a click and a shift-click select a
range; "Move" with a folder chosen moves exactly those messages; dragging one row onto
Trash in the sidebar moves that one; j / x / # select and delete from the keyboard; in
Trash, select-all and "Delete for good" ask first, then delete; each time the page comes
back to the folder with a notice, and an IMAP session sees the messages where the page
says they went.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.e2e.conftest import RunningServer
from tests.web.client import imap_login

ALICE = "alice@example.test"


def _subjects(server: RunningServer, mailbox: str) -> set[str]:
    imap = imap_login(server, ALICE)
    try:
        typ, _ = imap.select(mailbox)
        assert typ == "OK"
        typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        found = set()
        for item in data:
            if isinstance(item, tuple):
                match = re.search(rb"Subject: (.*?)\r\n", item[1])
                assert match
                found.add(match.group(1).decode())
        return found
    finally:
        imap.logout()


def test_move_by_toolbar_and_drag_to_trash(
    server: RunningServer, sign_in: Callable[..., Page], outside_requests: list[str]
) -> None:
    imap = imap_login(server, ALICE)
    try:
        for n in range(4):
            message = f"From: bob@example.test\r\nSubject: item {n}\r\n\r\nbody {n}\r\n"
            assert imap.append("INBOX", "", None, message.encode())[0] == "OK"
    finally:
        imap.logout()
    page = sign_in(ALICE)
    rows = page.locator(".list li[data-uid]")
    expect(rows).to_have_count(4)
    move = page.locator('#list-actions button[value="move"]')
    expect(move).to_be_disabled()  # nothing selected yet

    # Newest first: item 3, item 2, item 1, item 0. Select item 3 and, with shift, item 2.
    page.locator(".list li", has_text="item 3").locator("input.pick").click()
    page.locator(".list li", has_text="item 2").locator("input.pick").click(modifiers=["Shift"])
    expect(page.locator("input.pick:checked")).to_have_count(2)
    expect(move).to_be_enabled()
    screenshot(page, "list-selected-desktop")
    page.select_option("#move-to", "Archive")
    move.click()
    expect(page.locator(".notice")).to_have_text("2 messages moved to Archive.")
    expect(rows).to_have_count(2)
    assert _subjects(server, "Archive") == {"item 3", "item 2"}
    assert _subjects(server, "INBOX") == {"item 1", "item 0"}

    # Drag one row (not selected) onto Trash in the sidebar.
    row = page.locator(".list li", has_text="item 0")
    row.drag_to(page.locator('.folders a[data-folder="Trash"]'))
    expect(page.locator(".notice")).to_have_text("1 message moved to Trash.")
    expect(rows).to_have_count(1)
    assert _subjects(server, "Trash") == {"item 0"}
    assert _subjects(server, "INBOX") == {"item 1"}

    # Keys: j puts the cursor on the first row, x selects it, # deletes the selection.
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator("input.pick:checked")).to_have_count(1)
    page.keyboard.press("#")
    expect(page.locator(".notice")).to_have_text("1 message moved to Trash.")
    assert _subjects(server, "INBOX") == set()

    # In Trash, select all and delete for good, after saying yes to the question.
    page.goto(page.url.split("/folder")[0] + "/folder?f=Trash")
    questions: list[str] = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.locator("#select-all").check()
    expect(page.locator("input.pick:checked")).to_have_count(2)
    page.locator('#list-actions button[value="delete"]').click()
    expect(page.locator(".notice")).to_have_text("2 messages deleted for good.")
    assert questions == ["Delete the selected messages for good?"]
    assert _subjects(server, "Trash") == set()
    assert outside_requests == []
