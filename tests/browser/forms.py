"""Filling in the webmail's forms the way a person does, whichever editor the page offers."""

from __future__ import annotations

from playwright.sync_api import Page


def write_body(page: Page, body: str) -> None:
    """Type the text in the formatted-text editor when the page offers it (static/editor.js),
    else in the plain text area (the form without script)."""
    editor = page.locator(".editor")
    if editor.count() and editor.is_visible():
        editor.click()
        page.keyboard.type(body)
    else:
        page.fill("textarea[name=body]", body)
