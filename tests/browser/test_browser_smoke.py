"""The browser fixtures work: Debian's Chromium signs in and out of a real Pillarbox."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect


def test_sign_in_shows_inbox_and_sign_out_returns_to_sign_in(
    sign_in: Callable[..., Page], base_url: str, outside_requests: list[str]
) -> None:
    page = sign_in("alice@example.test")
    expect(page.locator("h1")).to_contain_text("INBOX")
    expect(page.locator("header")).to_contain_text("alice@example.test")
    page.click("text=Sign out")
    page.wait_for_url("**/signin*")
    page.goto(base_url + "/folder?f=INBOX")
    page.wait_for_url("**/signin?next=*")
    assert outside_requests == []
