"""Browser tests: Debian's Chromium driven by Playwright against a real Pillarbox.

The browser is the one `scripts/install-test-tools` installs (`/usr/bin/chromium`, or
`PILLARBOX_CHROMIUM`); Playwright's own browser downloads are never used. Missing, the
tests fail with a message that says how to install it: a browser test that silently
skips proves nothing.

Nothing the browser does may leave this machine: every request to a host other than
127.0.0.0/8 or localhost goes to a proxy address where nothing listens, and Chromium's
own background traffic (updates, sync, safe browsing) is off. `outside_requests` lists
such attempts, so a test can assert that a hostile message made none.

Screenshots of the main screens go to `var/screenshots/` (override with
`PILLARBOX_SCREENSHOTS`), the folder CI keeps.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.web.conftest import e2e_backend, server, server_factory

__all__ = ["e2e_backend", "server", "server_factory"]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("PILLARBOX_SCREENSHOTS", REPO / "var" / "screenshots"))
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000

# Chromium switches: no background traffic of its own, and every request that is not to
# loopback goes to a dead proxy (port 9, discard: nothing listens there in tests);
# Chromium never proxies loopback addresses (its implicit bypass rules).
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
    "--proxy-server=http://127.0.0.1:9",
]


def chromium_path() -> str:
    path = os.environ.get("PILLARBOX_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail(
            "Debian's Chromium is not installed: run scripts/install-test-tools as root "
            "(apt-get install chromium), or set PILLARBOX_CHROMIUM to a Chromium binary"
        )
    return path


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    host = (parts.hostname or "").lower()
    return host == "localhost" or host.startswith("127.") or host in ("::1", "[::1]")


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """One headless Chromium per test worker."""
    chromium = playwright_driver.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@pytest.fixture
def outside_requests() -> list[str]:
    """URLs of requests the pages tried to send off this machine (all refused)."""
    return []


@pytest.fixture
def new_context(
    browser: Browser, outside_requests: list[str]
) -> Iterator[Callable[..., BrowserContext]]:
    """Make browser contexts (separate cookie jars: one per person); closed after."""
    made: list[BrowserContext] = []

    def make(**options: object) -> BrowserContext:
        options.setdefault("viewport", DESKTOP)
        context = browser.new_context(**options)  # type: ignore[arg-type]
        context.set_default_timeout(TIMEOUT_MS)

        def note(request: object) -> None:
            url = getattr(request, "url", "")
            if not is_loopback_url(url):
                outside_requests.append(url)

        context.on("request", note)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def base_url(server: RunningServer) -> str:
    return f"http://127.0.0.1:{server.port('http')}"


@pytest.fixture
def sign_in(new_context: Callable[..., BrowserContext], base_url: str) -> Callable[..., Page]:
    """sign_in("bob@example.test") → a page of a fresh browser, signed in, at INBOX."""

    def open_as(address: str, **options: object) -> Page:
        page = new_context(**options).new_page()
        page.goto(base_url + "/signin")
        page.fill("input[name=address]", address)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/folder?f=INBOX*")
        return page

    return open_as


def screenshot(page: Page, name: str) -> Path:
    """Save the page as `var/screenshots/NAME.png` (full page) for CI to keep."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
