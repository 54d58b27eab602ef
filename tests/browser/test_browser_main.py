"""The main scenario, in the real browser against a real server: two people, one message.

alice signs in and sends bob a message through the compose form; bob's INBOX page, open
all along, shows it arrive without a reload within one second of alice's send
completing; bob opens it and his IMAP session sees \\Seen; a flag bob sets from an IMAP
client shows on his open page (the star) within one second; signing out ends the
session, so the next visit asks to sign in. No request leaves the machine.

The two live figures are printed and recorded as test properties (junit XML:
``arrival_seconds``, ``flag_seconds``).
"""

from __future__ import annotations

import imaplib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, Response, expect

from tests.browser.forms import write_body
from tests.e2e.conftest import RunningServer
from tests.web.client import imap_login

LIVE_LIMIT = 1.0  # seconds: issue 14, "within one second"
WAIT_MS = 5_000  # how long to wait before calling it missing (the figure is asserted apart)
SUBJECT = "Seed potatoes for the allotment"
BODY = "Shall we split a sack of Charlotte this year?\n\nalice"


# Notes the wall-clock time (ms) at which a list row holding TEXT, and inside it an
# element matching INNER (or the row itself), first appears in the page: a precise
# figure, where expect()'s polling (up to 500 ms apart) would only bound it.
WATCH_JS = """([text, inner]) => {
  window.pillarboxSeenAt = null;
  const present = () => [...document.querySelectorAll(".list li")].some(
    (li) => li.textContent.includes(text) && (!inner || li.querySelector(inner)));
  const observer = new MutationObserver(() => {
    if (present()) { window.pillarboxSeenAt = Date.now(); observer.disconnect(); }
  });
  observer.observe(document.querySelector("main"),
    { childList: true, subtree: true, attributes: true, characterData: true });
  return present();
}"""


def watch_for(page: Page, text: str, inner: str = "") -> None:
    """Start timing the arrival of a row (see WATCH_JS); it must not be there yet."""
    assert page.evaluate(WATCH_JS, [text, inner]) is False


def seen_after(page: Page, since: float) -> float:
    """Seconds from SINCE (time.time()) to the watched row's arrival."""
    seen_ms = page.evaluate("window.pillarboxSeenAt")
    assert seen_ms is not None, "the row showed without a change the page observed"
    return float(seen_ms) / 1000 - since


def _is_event_stream(response: Response) -> bool:
    return urlsplit(response.url).path == "/events"


@contextmanager
def listening(page: Page) -> Iterator[None]:
    """Run the block (a navigation) and wait until the new page's live stream is open.

    The server subscribes to the change bus before it answers /events, so once the
    answer's headers are in, no change can slip past the page."""
    with page.expect_response(_is_event_stream):
        yield


def send_from_compose(
    page: Page, to: str, subject: str, body: str, attachments: Sequence[Path] = ()
) -> float:
    """Fill in and send the compose form; returns the time (time.time()) the send completed
    (the POST answered: submission answers only after the message is committed)."""
    page.get_by_role("link", name="Write").click()
    page.wait_for_load_state("domcontentloaded")  # deferred scripts (the editor) have run
    page.fill("input[name=to]", to)
    page.fill("input[name=subject]", subject)
    write_body(page, body)
    if attachments:
        page.set_input_files("input[type=file]", [str(path) for path in attachments])
    sent = page.get_by_role("button", name="Send")
    with page.expect_response(
        lambda r: urlsplit(r.url).path == "/compose" and r.request.method == "POST"
    ) as answer:
        sent.click()
    done = time.time()
    assert answer.value.status in (200, 303), answer.value.status
    return done


def expect_body_text(page: Page, text: str) -> None:
    """The message's text, shown as plain text or in the HTML frame."""
    shown = page.locator("pre.body, iframe.html-body").first
    expect(shown).to_be_visible()
    if page.locator("iframe.html-body").count():
        expect(page.frame_locator("iframe.html-body").locator("body")).to_contain_text(text)
    else:
        expect(page.locator("pre.body").first).to_contain_text(text)


def flags_of(imap: imaplib.IMAP4, uid: int) -> str:
    typ, data = imap.uid("FETCH", str(uid), "(FLAGS)")
    assert typ == "OK", data
    return " ".join(item.decode() for item in data if isinstance(item, bytes))


def uid_of(imap: imaplib.IMAP4, subject: str) -> int:
    typ, data = imap.uid("SEARCH", "SUBJECT", f'"{subject}"')
    assert typ == "OK", data
    uids = data[0].split()
    assert len(uids) == 1, uids
    return int(uids[0])


def test_alice_writes_bob_reads_live_and_over_imap(
    server: RunningServer,
    sign_in: Callable[..., Page],
    base_url: str,
    outside_requests: list[str],
    record_property: Callable[[str, object], None],
) -> None:
    bob = sign_in("bob@example.test")
    with listening(bob):
        bob.goto(base_url + "/folder?f=INBOX")
    expect(bob.locator("h1")).to_contain_text("INBOX")
    row = bob.locator(".list li", has_text=SUBJECT)
    expect(row).to_have_count(0)

    # alice sends; bob's open page shows the message without a reload.
    alice = sign_in("alice@example.test")
    watch_for(bob, SUBJECT)
    sent_at = send_from_compose(alice, "bob@example.test", SUBJECT, BODY)
    expect(row).to_be_visible(timeout=WAIT_MS)
    arrival = seen_after(bob, sent_at)
    expect(alice.locator(".notice")).to_contain_text("sent", ignore_case=True)
    print(f"new mail on bob's open page {arrival * 1000:.0f} ms after alice's send")
    record_property("arrival_seconds", round(arrival, 3))
    assert arrival < LIVE_LIMIT, f"the new message took {arrival:.2f} s to show"
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    expect(row).to_contain_text("alice")

    imap = imap_login(server, "bob@example.test")
    try:
        typ, data = imap.select("INBOX")
        assert typ == "OK", data
        uid = uid_of(imap, SUBJECT)
        assert "\\Seen" not in flags_of(imap, uid)

        # bob reads it: \Seen for every IMAP client too.
        row.get_by_role("link").click()
        expect(bob.locator("h1")).to_have_text(SUBJECT)
        expect_body_text(bob, "Charlotte")
        assert "\\Seen" in flags_of(imap, uid)

        # Back on the list, a flag set from an IMAP client shows as the star.
        with listening(bob):
            bob.get_by_role("link", name=re.compile("INBOX")).first.click()
        star = row.locator(".flag")
        expect(row).to_have_class(re.compile(r"\bread\b"))
        expect(star).to_have_count(0)
        watch_for(bob, SUBJECT, ".flag")
        typ, data = imap.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
        assert typ == "OK", data
        flagged_at = time.time()  # the tagged OK: the flag is committed and published
        expect(star).to_be_visible(timeout=WAIT_MS)
        flag_delay = seen_after(bob, flagged_at)
        print(f"IMAP flag on bob's open page {flag_delay * 1000:.0f} ms after STORE")
        record_property("flag_seconds", round(flag_delay, 3))
        assert flag_delay < LIVE_LIMIT, f"the flag took {flag_delay:.2f} s to show"
    finally:
        imap.logout()

    # Sign-out ends the session: the next visit asks to sign in.
    bob.get_by_role("button", name="Sign out").click()
    bob.wait_for_url("**/signin*")
    bob.goto(base_url + "/folder?f=INBOX")
    bob.wait_for_url("**/signin?next=*")
    expect(bob.locator("input[name=password]")).to_be_visible()
    expect(bob.locator(".list")).to_have_count(0)
    assert outside_requests == []
