"""Hostile HTML mail opened in the real browser runs nothing and loads nothing.

Every message of `xss_corpus` is delivered to bob over SMTP, and bob, signed in to the
webmail in Debian's Chromium, opens the folder list and then each message page. For
each case the test watches four things a payload tries to do (`xss_corpus`'s
``{{JS}}``): set ``pwned`` on its own window or on the page (read back through
Playwright in every frame, the sandboxed body frame included: Playwright's evaluation
reaches a frame even where the page's own scripts may not run), open a dialog, ask
the test's beacon server for anything (an HTTP server on 127.0.0.1 whose address is
written into the payloads: loopback requests are let through, so any request at all
would arrive there), or reach a host off this machine (the browser fixtures send
those to a dead proxy; here they are recorded). Headers and attachment names that
hold markup must come out as the same text, and no element or handler of theirs may
appear in the page.

The harness is shown to be able to fail: a page of the beacon's own that runs script
(in a plain frame and in a sandboxed frame allowed to script) is caught by the same
checks, and each payload served raw by the beacon, without the webmail, is caught
running or loading, except those that do nothing in today's Chromium (`NOT_LIVE`).

One server, one delivery and one signed-in browser serve every case (module scope):
the corpus runs in seconds, and each case is still reported by name.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import smtplib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page
from playwright.sync_api import Error as PlaywrightError

from tests.browser import xss_corpus
from tests.browser.conftest import DESKTOP, TIMEOUT_MS, is_loopback_url
from tests.e2e.conftest import PASSWORD, RunningServer, make_config, provision

CASES = xss_corpus.names()
HEADER_CASES = [name for name in CASES if name.startswith("header_")]
ATTACHMENT_CASES = [name for name in CASES if name.startswith("attachment_")]

# Payloads that do nothing even raw, in a plain page of today's Chromium: they stay
# in the corpus for older browsers and other readers, and for the cleaner's sake.
NOT_LIVE = {
    "header_8bit_subject": "headers only: the body has no payload",
    "header_encoded_words": "headers only: the body has no payload",
    "header_raw_markup": "headers only: the body is plain text",
    "attachment_names": "names only: there is no HTML body",
}

# Elements and attributes a message may never add to the webmail's own pages.
INJECTED = """() => {
  const found = [];
  const own = 'script[src="/static/app.js"], link[rel=stylesheet][href="/static/style.css"]';
  for (const el of document.querySelectorAll(
      'script, img, svg, math, object, embed, style, iframe:not(.html-body), frame, link,'
      + ' meta[http-equiv], base, form:not(.inline), video, audio, portal')) {
    if (!el.matches(own)) found.push(el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.startsWith('on')) found.push(el.tagName + ' ' + attr.name);
    }
  }
  return found;
}"""
PWNED = "() => (typeof window.pwned === 'undefined' ? null : String(window.pwned))"


class Beacon:
    """An HTTP server that records every request it gets, and serves a few pages of
    its own (raw payloads, the self-check) from paths that do not count as hits."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.pages: dict[str, str] = {}
        beacon = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                page = beacon.pages.get(self.path)
                if page is None:
                    beacon.hits.append(f"{self.command} {self.path}")
                body = (page or "beacon").encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_OPTIONS = do_PUT = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@dataclass
class Watched:
    """One browser page and everything it did that a hostile message might cause."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)

    def reset(self, beacon: Beacon) -> None:
        self.dialogs.clear()
        self.outside.clear()
        self.popups.clear()
        beacon.hits.clear()

    def settle(self, *, network_idle: bool = True) -> None:
        """Wait until the page and each of its frames has loaded and the network has
        been quiet for a moment: whatever a payload would load has been asked for.
        (A live page keeps its event stream open, so it is never idle: `network_idle`
        False waits for the loads only.)"""
        self.page.wait_for_load_state("load")
        for frame in self.page.frames:
            with contextlib.suppress(PlaywrightError):  # detached by a navigation meanwhile
                frame.wait_for_load_state("load")
        if network_idle:
            self.page.wait_for_load_state("networkidle")

    def findings(self, beacon: Beacon) -> list[str]:
        """What ran or was requested since `reset`: empty when nothing was."""
        found: list[str] = []
        for frame in self.page.frames:
            try:
                value = frame.evaluate(PWNED)
            except PlaywrightError:  # a frame gone away meanwhile has nothing to show
                continue
            if value is not None:
                found.append(f"window.pwned={value!r} in frame {frame.url[:80]}")
        found += [f"dialog: {d}" for d in self.dialogs]
        found += [f"beacon request: {hit}" for hit in beacon.hits]
        found += [f"request off this machine: {url}" for url in self.outside]
        found += [f"new window: {url}" for url in self.popups]
        return found


def watch(context: BrowserContext) -> Watched:
    page = context.new_page()
    watched = Watched(page)

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(f"{dialog.type} {dialog.message!r}")
        dialog.dismiss()

    def on_request(request: object) -> None:
        url = getattr(request, "url", "")
        if not is_loopback_url(url):
            watched.outside.append(url)

    def on_page(popup: Page) -> None:
        watched.popups.append(popup.url)

    page.on("dialog", on_dialog)
    context.on("request", on_request)
    context.on("page", on_page)
    return watched


@pytest.fixture(scope="module")
def beacon() -> Iterator[Beacon]:
    server = Beacon()
    yield server
    server.close()


@pytest.fixture(scope="module")
def raw_beacon() -> Iterator[Beacon]:
    """A second beacon for the raw payloads, so their late requests never land in the
    first one's record during a webmail case."""
    server = Beacon()
    yield server
    server.close()


@pytest.fixture(scope="module")
def corpus(beacon: Beacon) -> dict[str, xss_corpus.Case]:
    return {case.name: case for case in xss_corpus.load_all(beacon.port)}


@pytest.fixture(scope="module")
def xss_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = RunningServer(make_config(tmp_path_factory.mktemp("xss")))
    server.start()
    provision(server)
    yield server
    server.stop()


@dataclass(frozen=True)
class Inbox:
    uidvalidity: int
    uids: dict[str, int]  # case name → UID in bob's INBOX


@pytest.fixture(scope="module")
def inbox(xss_server: RunningServer, corpus: dict[str, xss_corpus.Case]) -> Inbox:
    """Every case delivered to bob over SMTP (the MX listener), found again by its
    X-Corpus-Case header over IMAP."""
    with smtplib.SMTP("127.0.0.1", xss_server.port("smtp"), "attacker.test", timeout=30) as s:
        for case in corpus.values():
            refused = s.sendmail("mallory@attacker.test", ["bob@example.test"], case.raw)
            assert refused == {}, (case.name, refused)
    imap = imaplib.IMAP4("127.0.0.1", xss_server.port("imap"), timeout=30)
    try:
        imap.login("bob@example.test", PASSWORD)
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0] or 0) == len(corpus), data
        uidvalidity = int(imap.response("UIDVALIDITY")[1][0] or 0)
        uids: dict[str, int] = {}
        for name in corpus:
            typ, found = imap.uid("SEARCH", "HEADER", "X-Corpus-Case", name)
            numbers = (found[0] or b"").split()
            assert typ == "OK" and len(numbers) == 1, (name, found)
            uids[name] = int(numbers[0])
    finally:
        imap.logout()
    return Inbox(uidvalidity, uids)


@pytest.fixture(scope="module")
def bob(browser: Browser, xss_server: RunningServer, inbox: Inbox) -> Iterator[Watched]:
    """Bob's browser, signed in, shared by every case of this module."""
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    watched = watch(context)
    page = watched.page
    page.goto(f"{base(xss_server)}/signin")
    page.fill("input[name=address]", "bob@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/folder?f=INBOX*")
    yield watched
    context.close()


@pytest.fixture(scope="module")
def raw_reader(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    yield watch(context)
    context.close()


def base(server: RunningServer) -> str:
    return f"http://127.0.0.1:{server.port('http')}"


def message_url(server: RunningServer, inbox: Inbox, name: str, **options: str) -> str:
    """The message page of a case; `options` are further query parameters of the page
    (a reading option, such as showing remote images, is one more of them)."""
    query = {"f": "INBOX", "v": str(inbox.uidvalidity), "uid": str(inbox.uids[name])}
    return f"{base(server)}/read?{urlencode({**query, **options})}"


def header(case: xss_corpus.Case, name: str) -> str:
    """A header as a reader should see it: decoded, one line, markup and all."""
    return re.sub(r"\s+", " ", str(case.message[name] or "")).strip()


def texts(page: Page, selector: str) -> list[str]:
    return [re.sub(r"\s+", " ", t).strip() for t in page.locator(selector).all_text_contents()]


# --- the harness can fail -------------------------------------------------------------


def test_harness_catches_script_that_runs(bob: Watched, beacon: Beacon) -> None:
    """A page that does what every payload tries (in the page itself, in a plain frame,
    and in a sandboxed frame allowed to script) is caught on every count."""
    js = xss_corpus.load("script_basic", beacon.port).html()
    assert js is not None
    script = re.search(r"<script>(.*?)</script>", js)
    assert script is not None
    payload = script.group(1).replace("script_basic", "selfcheck")
    outside = "new Image().src='http://attacker.example/selfcheck';"
    beacon.pages["/selfcheck/frame"] = f"<p>frame</p><script>{outside}{payload}</script>"
    beacon.pages["/selfcheck"] = (
        '<p>top</p><iframe src="/selfcheck/frame"></iframe>'
        '<iframe sandbox="allow-scripts allow-modals" src="/selfcheck/frame"></iframe>'
    )
    bob.reset(beacon)
    bob.page.goto(f"{beacon.url}/selfcheck")
    bob.settle()
    found = bob.findings(beacon)
    assert len([f for f in found if f.startswith("window.pwned='selfcheck' in frame")]) == 3
    assert "dialog: alert 'selfcheck'" in found
    assert "beacon request: GET /b/selfcheck/fetch" in found
    assert "request off this machine: http://attacker.example/selfcheck" in found
    bob.reset(beacon)


@pytest.mark.parametrize("name", [n for n in CASES if n not in NOT_LIVE])
def test_payload_is_live_without_the_webmail(
    raw_reader: Watched, raw_beacon: Beacon, name: str
) -> None:
    """Each payload, served as it is by a plain web server, runs or loads something in
    this very browser: the corpus tests something, and the checks would see it."""
    html = xss_corpus.load(name, raw_beacon.port).html()
    assert html is not None
    raw_beacon.pages[f"/raw/{name}"] = html
    raw_reader.reset(raw_beacon)
    raw_reader.page.goto(f"{raw_beacon.url}/raw/{name}")
    raw_reader.settle()
    assert raw_reader.findings(raw_beacon) != [], f"{name}: the payload did nothing"


# --- the webmail runs none of it --------------------------------------------------------


def test_folder_list_shows_hostile_headers_as_text(
    bob: Watched,
    beacon: Beacon,
    xss_server: RunningServer,
    corpus: dict[str, xss_corpus.Case],
) -> None:
    bob.reset(beacon)
    subjects: list[str] = []
    senders: list[str] = []
    url: str | None = f"{base(xss_server)}/folder?f=INBOX"
    while url is not None:
        bob.page.goto(url)
        bob.settle(network_idle=False)
        assert bob.page.evaluate(INJECTED) == []
        subjects += texts(bob.page, ".list .subject")
        senders += texts(bob.page, ".list .from")
        older = bob.page.locator("a[rel=next]")
        url = base(xss_server) + str(older.get_attribute("href")) if older.count() else None
    assert len(subjects) == len(corpus)
    for name in HEADER_CASES:
        case = corpus[name]
        assert header(case, "subject") in subjects, name
        assert case.message["from"].addresses[0].display_name in senders, name
    assert bob.findings(beacon) == []


@pytest.mark.parametrize("name", CASES)
def test_message_runs_and_loads_nothing(
    bob: Watched,
    beacon: Beacon,
    xss_server: RunningServer,
    inbox: Inbox,
    corpus: dict[str, xss_corpus.Case],
    name: str,
) -> None:
    case = corpus[name]
    bob.reset(beacon)
    bob.page.goto(message_url(xss_server, inbox, name))
    bob.settle()
    page = bob.page
    shown = page.locator("article.message").inner_text()
    if case.html() is not None:  # the message is there, in the sandboxed frame
        frame_element = page.locator("iframe.html-body")
        sandbox = frame_element.get_attribute("sandbox") or ""
        assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
        frame = frame_element.element_handle().content_frame()
        assert frame is not None
        shown += frame.evaluate("() => document.body.innerText")
    assert "hello" in shown
    assert page.evaluate(INJECTED) == []
    assert header(case, "subject") in texts(page, "h1"), name
    assert [n for n in case.attachment_names()] == texts(page, ".attachments li a")
    assert bob.findings(beacon) == []


def test_corpus_is_large_enough() -> None:
    assert len([n for n in CASES if n not in HEADER_CASES + ATTACHMENT_CASES]) >= 40
    for name in CASES:
        first = (Path(xss_corpus.HERE) / f"{name}.eml").read_text().splitlines()[0]
        assert first.startswith("# "), f"{name}: no comment naming the attack"
