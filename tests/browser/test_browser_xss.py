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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, Request
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser import xss_corpus
from tests.browser.conftest import DESKTOP, TIMEOUT_MS, is_loopback_url
from tests.e2e.conftest import PASSWORD, RunningServer, make_config, provision

# One worker should hold the whole module: every worker that runs a case builds the
# server, the delivery and the opened pages once (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("xss")

CASES = xss_corpus.names()
T = TypeVar("T")
SIDE_BY_SIDE = 8  # tabs loading at once: each case still waits for its own quiet
PROBE_MS = 3_000  # a frame's document, when there is one, is there long before this
HEADER_CASES = [name for name in CASES if name.startswith("header_")]
ATTACHMENT_CASES = [name for name in CASES if name.startswith("attachment_")]

# Payloads that do nothing even raw, in a plain page of today's Chromium: they stay
# in the corpus for older browsers and other readers, and for the cleaner's sake.
NOT_LIVE = {
    "header_8bit_subject": "headers only: the body has no payload",
    "header_encoded_words": "headers only: the body has no payload",
    "header_raw_markup": "headers only: the body is plain text",
    "attachment_names": "names only: there is no HTML body",
    "broken_dangling_markup": "Chromium refuses URLs holding both a newline and '<'",
    "charset_meta_confusion": "Chromium has no UTF-7 decoder",
    "css_expression": "expression(), behavior and -moz-binding: old IE and Firefox only",
    "portal_ping": "<portal> is not enabled; ping is sent only when a link is followed",
    "svg_animate_set": "the links need a click; Chromium does not animate on* attributes",
    "url_javascript_href": "every link needs a click",
    "url_xlink_href": "every link needs a click",
}

# Elements and attributes a message may never add to the webmail's own pages.
# What a message may never add to the webmail's own pages: elements only a message
# would bring, any inline handler (the pages have none: their CSP forbids them), and
# URLs or stylesheets naming the payloads' marks. The pages' own forms, icons and
# styles are left alone, so the check does not break when the pages grow.
INJECTED = """(beacon) => {
  const found = [];
  const hostile = /pwned|alert\\(|attacker\\.example/i;
  const marks = {test: (text) => hostile.test(text) || text.includes(beacon)};
  for (const el of document.querySelectorAll(
      'script:not([src^="/static/"]), iframe:not(.html-body), frame, object, embed, applet,'
      + ' base, portal, meta[http-equiv], math')) {
    found.push(el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll('style, script')) {
    if (marks.test(el.textContent)) found.push(el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const link = attr.name === 'href';  // linked URLs of a plain-text body are fine
      if (attr.name.startsWith('on')
          || (link && !/^(https?:|mailto:|[/?#])/i.test(attr.value))
          || (!link && !['title', 'alt', 'aria-label'].includes(attr.name)
              && marks.test(attr.value))) {
        found.push(el.tagName + ' ' + attr.name + '=' + attr.value.slice(0, 60));
      }
    }
  }
  return found;
}"""
# What the browser itself parsed in the body frame that could run or load: a gap in
# the cleaner shows here even though the sandbox and the frame's CSP would stop it.
FRAME_ACTIVE = """() => {
  const found = [];
  for (const el of document.body.querySelectorAll(
      'script, style, iframe, frame, object, embed, applet, link, meta, base, form, input,'
      + ' button, svg, math, video, audio, source, track, portal, template, noscript')) {
    found.push(el.outerHTML.slice(0, 120));
  }
  const loads = ['src', 'srcset', 'srcdoc', 'poster', 'action', 'formaction', 'background',
                 'ping', 'data', 'xlink:href', 'lowsrc', 'dynsrc'];
  for (const el of document.body.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.startsWith('on') || loads.includes(attr.name)
          || (attr.name === 'href' && !/^(https?:|mailto:)/i.test(attr.value))
          || (attr.name === 'style' && /url\\s*\\(|expression|image-set/i.test(attr.value))) {
        found.push(el.tagName + ' ' + attr.name + '=' + attr.value.slice(0, 60));
      }
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
    """One browser tab and what it did that a hostile message might cause."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)

    def settle(self, *, network_idle: bool = True) -> None:
        """Wait until the page and its frames have loaded (the load event waits for
        every frame) and the network has been quiet for a moment: whatever a payload
        would load has been asked for. A live page keeps its event stream open and is
        never idle: `network_idle` False waits for the load only."""
        self.page.wait_for_load_state("load")
        if network_idle:
            self.page.wait_for_load_state("networkidle")

    def findings(self, beacon: Beacon, path: str = "/") -> list[str]:
        """What ran in this tab or was requested: empty when nothing was. Beacon
        requests count when under `path` (a case's own URLs name it)."""
        found: list[str] = []
        for frame in self.page.frames:
            try:
                if frame is not self.page.main_frame:  # one whose load was refused has no
                    frame.wait_for_function("() => true", timeout=PROBE_MS)  # document
                value = frame.evaluate(PWNED)
            except PlaywrightTimeoutError:
                found.append(f"a frame with no document: {frame.url[:80]!r}")
                continue
            except PlaywrightError:  # a frame gone away meanwhile has nothing to show
                continue
            if value is not None:
                found.append(f"window.pwned={value!r} in frame {frame.url[:80]}")
        found += [f"dialog: {d}" for d in self.dialogs]
        found += [f"beacon request: {h}" for h in beacon.hits if h.split()[1].startswith(path)]
        found += [f"request off this machine: {url}" for url in self.outside]
        found += [f"new window: {url}" for url in self.popups]
        return found


class Tabs:
    """A browser context whose tabs are each watched on their own, so that several
    cases can load side by side and each finding still names its case."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.tabs: dict[Page, Watched] = {}
        self.stray: list[str] = []  # requests off this machine no tab can be named for
        # Eight tabs load side by side, on a machine running other tests too.
        context.set_default_timeout(3 * TIMEOUT_MS)
        context.on("request", self._request)

    def _request(self, request: Request) -> None:
        if is_loopback_url(request.url):
            return
        try:
            tab = self.tabs.get(request.frame.page)
        except PlaywrightError:  # a worker's request has no frame
            tab = None
        (tab.outside if tab else self.stray).append(request.url)

    def new(self) -> Watched:
        page = self.context.new_page()
        tab = Watched(page)

        def on_dialog(dialog: Dialog) -> None:
            tab.dialogs.append(f"{dialog.type} {dialog.message!r}")
            # Two frames' dialogs can race: one may be gone by the time it is dismissed.
            with contextlib.suppress(PlaywrightError):
                dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("popup", lambda popup: tab.popups.append(popup.url))
        self.tabs[page] = tab
        return tab

    def open_all(self, urls: dict[str, str], look: Callable[[str, Watched], T]) -> dict[str, T]:
        """Each URL in a tab of its own, a few at a time; `look` at each once it has
        settled, then close it."""
        names = list(urls)
        seen: dict[str, T] = {}
        for at in range(0, len(names), SIDE_BY_SIDE):
            batch = {name: self.new() for name in names[at : at + SIDE_BY_SIDE]}
            for name, tab in batch.items():
                tab.page.goto(urls[name], wait_until="commit")
            for name, tab in batch.items():
                tab.settle()
                seen[name] = look(name, tab)
                tab.page.close()
                del self.tabs[tab.page]
        return seen


@pytest.fixture(scope="module")
def beacon() -> Iterator[Beacon]:
    server = Beacon()
    yield server
    server.close()


@pytest.fixture(scope="module")
def raw_beacon() -> Iterator[Beacon]:
    """A second beacon for the raw payloads, so that their requests never mix with
    what the webmail's cases might cause."""
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
def bob(browser: Browser, xss_server: RunningServer, inbox: Inbox) -> Iterator[Tabs]:
    """Bob's browser, signed in, shared by every case of this module."""
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    # Message pages are live (an open /events stream), which would keep the network from
    # ever going idle; live updates are not what this module checks.
    context.route("**/events*", lambda route: route.abort())
    tabs = Tabs(context)
    page = tabs.new().page
    page.goto(f"{base(xss_server)}/signin")
    page.fill("input[name=address]", "bob@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/folder?f=INBOX*")
    yield tabs
    context.close()


@dataclass(frozen=True)
class Shown:
    """A message page as bob saw it, and what it ran or loaded."""

    findings: list[str]
    page: dict[str, Any]  # the top page: SHOWN's answer
    frame: dict[str, Any] | None  # the body frame: FRAME's answer, if there was one


SHOWN = (
    """() => ({
  injected: ("""
    + INJECTED
    + """)(),
  text: document.querySelector('article.message').innerText,
  subject: [...document.querySelectorAll('h1')].map(h => h.textContent),
  attachments: [...document.querySelectorAll('.attachments li a')].map(a => a.textContent),
  sandbox: document.querySelector('iframe.html-body')?.getAttribute('sandbox') ?? null,
})"""
)
FRAME = (
    """() => ({
  text: document.body.innerText,
  active: ("""
    + FRAME_ACTIVE
    + """)(),
})"""
)


@pytest.fixture(scope="module")
def shown(bob: Tabs, beacon: Beacon, xss_server: RunningServer, inbox: Inbox) -> dict[str, Shown]:
    """Every message page opened by bob (a few tabs at a time), and what each did."""

    def look(name: str, tab: Watched) -> Shown:
        body = [f for f in tab.page.frames if "/read/body" in f.url]
        return Shown(
            tab.findings(beacon, f"/b/{name}/"),
            tab.page.evaluate(SHOWN, f"127.0.0.1:{beacon.port}"),
            body[0].evaluate(FRAME) if body else None,
        )

    return bob.open_all({name: message_url(xss_server, inbox, name) for name in CASES}, look)


@pytest.fixture(scope="module")
def raw_shown(browser: Browser, raw_beacon: Beacon) -> dict[str, list[str]]:
    """Every payload served as it is by the raw beacon, and what each did."""
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    tabs = Tabs(context)
    urls: dict[str, str] = {}
    for name in CASES:
        html = xss_corpus.load(name, raw_beacon.port).html()
        if html is not None:
            raw_beacon.pages[f"/raw/{name}"] = html
            urls[name] = f"{raw_beacon.url}/raw/{name}"
    found = tabs.open_all(urls, lambda name, tab: tab.findings(raw_beacon, f"/b/{name}/"))
    context.close()
    return found


def base(server: RunningServer) -> str:
    return f"http://127.0.0.1:{server.port('http')}"


def message_url(server: RunningServer, inbox: Inbox, name: str, **options: str) -> str:
    """The message page of a case; `options` are further query parameters of the page
    (a reading option, such as showing remote images, is one more of them)."""
    query = {"f": "INBOX", "v": str(inbox.uidvalidity), "uid": str(inbox.uids[name])}
    return f"{base(server)}/read?{urlencode({**query, **options})}"


def header(case: xss_corpus.Case, name: str) -> str:
    """A header as a reader should see it: decoded, one line, markup and all."""
    return one_line(str(case.message[name] or ""))


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def texts(page: Page, selector: str) -> list[str]:
    return [one_line(t) for t in page.locator(selector).all_text_contents()]


# --- the harness can fail -------------------------------------------------------------


def test_harness_catches_script_that_runs(bob: Tabs, raw_beacon: Beacon) -> None:
    """A page that does what every payload tries (in a plain frame, and in a sandboxed
    frame allowed to script) is caught on every count. (Served by the raw payloads'
    beacon: the webmail's cases' beacon hears from the webmail only.)"""
    html = xss_corpus.load("script_basic", raw_beacon.port).html()
    assert html is not None
    script = re.search(r"<script>(.*?)</script>", html)
    assert script is not None
    payload = script.group(1).replace("script_basic", "selfcheck")
    outside = "new Image().src='http://attacker.example/selfcheck';"
    raw_beacon.pages["/selfcheck/frame"] = f"<p>frame</p><script>{outside}{payload}</script>"
    raw_beacon.pages["/selfcheck"] = (
        '<p>top</p><iframe src="/selfcheck/frame"></iframe>'
        '<iframe sandbox="allow-scripts allow-modals" src="/selfcheck/frame"></iframe>'
    )

    def look(name: str, tab: Watched) -> tuple[list[str], list[str], list[str]]:
        return (
            tab.findings(raw_beacon, "/b/selfcheck/"),
            tab.page.frames[1].evaluate(FRAME_ACTIVE),
            tab.page.evaluate(INJECTED, f"127.0.0.1:{raw_beacon.port}"),
        )

    selfcheck = {"selfcheck": f"{raw_beacon.url}/selfcheck"}
    found, active, injected = bob.open_all(selfcheck, look)["selfcheck"]
    assert len([f for f in found if f.startswith("window.pwned='selfcheck' in frame")]) == 3
    assert "dialog: alert 'selfcheck'" in found
    assert "beacon request: GET /b/selfcheck/fetch" in found
    assert "request off this machine: http://attacker.example/selfcheck" in found
    assert any("<script" in f for f in active)
    assert any("<iframe" in f for f in injected)


@pytest.mark.parametrize("name", [n for n in CASES if n not in NOT_LIVE])
def test_payload_is_live_without_the_webmail(raw_shown: dict[str, list[str]], name: str) -> None:
    """Each payload, served as it is by a plain web server, runs or loads something in
    this very browser: the corpus tests something, and the checks would see it."""
    assert raw_shown[name] != [], f"{name}: the payload did nothing"


# --- the webmail runs none of it --------------------------------------------------------


def test_folder_list_shows_hostile_headers_as_text(
    bob: Tabs,
    beacon: Beacon,
    xss_server: RunningServer,
    corpus: dict[str, xss_corpus.Case],
) -> None:
    tab = bob.new()
    subjects: list[str] = []
    senders: list[str] = []
    url: str | None = f"{base(xss_server)}/folder?f=INBOX"
    while url is not None:
        tab.page.goto(url)
        tab.settle(network_idle=False)
        assert tab.page.evaluate(INJECTED, f"127.0.0.1:{beacon.port}") == []
        subjects += texts(tab.page, ".list .subject")
        senders += texts(tab.page, ".list .from")
        older = tab.page.locator("a[rel=next]")
        url = base(xss_server) + str(older.get_attribute("href")) if older.count() else None
    assert len(subjects) == len(corpus)
    for name in HEADER_CASES:
        case = corpus[name]
        assert header(case, "subject") in subjects, name
        assert case.message["from"].addresses[0].display_name in senders, name
    assert tab.findings(beacon) == []


@pytest.mark.parametrize("name", CASES)
def test_message_runs_and_loads_nothing(
    shown: dict[str, Shown], corpus: dict[str, xss_corpus.Case], name: str
) -> None:
    case, seen = corpus[name], shown[name]
    assert seen.findings == []
    assert seen.page["injected"] == []
    text = seen.page["text"]
    if case.html() is not None:  # shown in the sandboxed frame, cleaned
        sandbox = seen.page["sandbox"]
        assert sandbox is not None
        assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
        assert seen.frame is not None
        assert seen.frame["active"] == []
        text += seen.frame["text"]
    assert "hello" in text  # the message is there: not an error page
    assert header(case, "subject") in [one_line(h) for h in seen.page["subject"]]
    assert case.message["from"].addresses[0].display_name in text
    listed = [one_line(a) for a in seen.page["attachments"]]
    for attachment in case.attachment_names():
        assert attachment in listed


def test_nothing_reached_the_beacon(shown: dict[str, Shown], beacon: Beacon, bob: Tabs) -> None:
    """Not even a request that names no case, nor one off this machine from no tab."""
    assert beacon.hits == []
    assert bob.stray == []


def test_corpus_is_large_enough() -> None:
    assert len([n for n in CASES if n not in HEADER_CASES + ATTACHMENT_CASES]) >= 40
    for name in CASES:
        first = (Path(xss_corpus.HERE) / f"{name}.eml").read_text().splitlines()[0]
        assert first.startswith("# "), f"{name}: no comment naming the attack"
