// Pillarbox webmail: the little script the pages use. No inline script anywhere (the
// Content-Security-Policy forbids it); everything here works on the markup as served.
"use strict";

// Show arrival times in the reader's own time zone and format (the server sends UTC).
function localTimes() {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  for (const el of document.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      el.textContent = format.format(when);
    }
  }
}

// Keyboard: "c" opens the editor, unless the reader is typing somewhere.
function shortcuts(event) {
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) {
    return;
  }
  if (event.key === "c" && !event.ctrlKey && !event.metaKey && !event.altKey) {
    window.location.assign("/compose");
  }
}

// --- Refreshing a page in place -------------------------------------------------------
// A refresh fetches the page again and morphs the open page into it: elements that did
// not change are kept as they are (with their listeners, focus, scroll, typed text and
// a loaded iframe), changed attributes and text are updated, rows are matched by key so
// that a new message at the top moves rows down instead of rewriting each of them.

// A row's identity: its id, data-key, its checkbox's value or its first link.
function keyOf(node) {
  if (node.nodeType !== Node.ELEMENT_NODE) {
    return null;
  }
  if (node.id) {
    return "#" + node.id;
  }
  if (node.hasAttribute("data-key")) {
    return "k" + node.getAttribute("data-key");
  }
  if (node.tagName === "LI" || node.tagName === "TR") {
    const box = node.querySelector("input[type=checkbox][name=uid]");
    if (box) {
      return "u" + box.value;
    }
    const link = node.querySelector("a[href]");
    if (link) {
      return "a" + link.getAttribute("href");
    }
  }
  return null;
}

// Attributes the reader changes, not the server: kept as they are.
const READER_ATTRIBUTES = new Set(["open"]);

function morph(old, fresh) {
  if (old.nodeType !== Node.ELEMENT_NODE) {
    if (old.nodeValue !== fresh.nodeValue) {
      old.nodeValue = fresh.nodeValue;
    }
    return;
  }
  for (const attr of Array.from(old.attributes)) {
    if (!fresh.hasAttribute(attr.name) && !READER_ATTRIBUTES.has(attr.name)) {
      old.removeAttribute(attr.name);
    }
  }
  for (const attr of Array.from(fresh.attributes)) {
    if (old.getAttribute(attr.name) !== attr.value) {
      old.setAttribute(attr.name, attr.value); // an unchanged iframe src is never set again
    }
  }
  if (old.tagName !== "TEXTAREA" && old.tagName !== "IFRAME" && !old.isContentEditable) {
    morphChildren(old, fresh);
  }
}

function morphChildren(old, fresh) {
  const keyed = new Map();
  for (const child of old.childNodes) {
    const key = keyOf(child);
    if (key !== null) {
      keyed.set(key, child);
    }
  }
  let cursor = old.firstChild;
  for (const next of Array.from(fresh.childNodes)) {
    const key = keyOf(next);
    let match = null;
    if (key !== null) {
      match = keyed.get(key) || null;
      keyed.delete(key);
    } else if (cursor && keyOf(cursor) === null) {
      match = cursor;
    }
    if (match && (match.nodeType !== next.nodeType || match.nodeName !== next.nodeName)) {
      match = null;
    }
    if (match === null) {
      old.insertBefore(document.importNode(next, true), cursor);
      continue;
    }
    if (match === cursor) {
      cursor = cursor.nextSibling;
    } else {
      old.insertBefore(match, cursor);
    }
    morph(match, next);
  }
  while (cursor) {
    const gone = cursor;
    cursor = cursor.nextSibling;
    old.removeChild(gone);
  }
}

// The account state the page shows (web/live.py): its stream catches up from here.
function pageState(doc) {
  const meta = doc.querySelector('meta[name="live-state"]');
  return meta ? meta.getAttribute("content") : "";
}

function applyPage(page) {
  const fresh = page.querySelector("main");
  const main = document.querySelector("main");
  if (!fresh || !main) {
    return;
  }
  // The reader's selection, by message, whatever moved in between.
  const boxes = "input[type=checkbox][name=uid]";
  const checked = new Set(Array.from(main.querySelectorAll(boxes + ":checked"), (b) => b.value));
  const x = window.scrollX;
  const y = window.scrollY;
  morphChildren(main, fresh);
  for (const box of main.querySelectorAll(boxes)) {
    box.checked = checked.has(box.value);
  }
  document.title = page.title;
  const meta = document.querySelector('meta[name="live-state"]');
  if (meta && pageState(page)) {
    meta.setAttribute("content", pageState(page));
  }
  window.scrollTo(x, y);
  localTimes();
  // For the other scripts: the content changed under them (listeners on kept elements
  // stay; new elements need delegated ones).
  document.dispatchEvent(new CustomEvent("pillarbox:refreshed"));
}

// Live updates: a page marked data-live listens to /events (server-sent events fed by
// the server's change bus) and, after any change of the account, fetches itself again
// and morphs into the new content: new mail, and mail read, flagged or removed from
// another device, show up without a reload. Changes arriving together cost one fetch.
// After the tab slept (hidden for a while, frozen, offline, restored from the back
// cache) the stream is opened again with the state the page shows; the server answers
// with one "catchup" change if the account moved on meanwhile, and with nothing if not.
const AWAY_MS = 10000; // hidden longer than this: the connection may be dead; reopen
const RETRY_CLOSED_MS = 30000; // a stream the browser gave up on is tried again after this

function live() {
  if (!document.querySelector("[data-live]") || !window.EventSource) {
    return;
  }
  let source = null;
  let pending = null;
  let running = false;
  let again = false;
  let hiddenSince = null;
  let retry = null;

  async function refresh() {
    pending = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const reply = await fetch(window.location.href, { credentials: "same-origin" });
      if (reply.redirected && new URL(reply.url).pathname === "/signin") {
        window.location.assign(reply.url); // the session ended: sign in, then come back
        return;
      }
      if (reply.ok) {
        applyPage(new DOMParser().parseFromString(await reply.text(), "text/html"));
      }
    } catch (error) {
      // offline: the stream's reconnect brings the next try
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  function schedule() {
    if (pending === null) {
      pending = setTimeout(refresh, 100);
    }
  }

  function connect() {
    if (source !== null) {
      source.close();
    }
    const state = pageState(document);
    source = new EventSource(state ? "/events?since=" + encodeURIComponent(state) : "/events");
    source.addEventListener("change", schedule);
    source.addEventListener("open", () => {
      document.documentElement.dataset.live = "open"; // tests wait for this
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // Not a stream any more (signed out, too many tabs, server gone): refresh says
        // which, and sends the reader to sign-in if that is it; otherwise try again
        // later, at a pace that cannot hammer a server coming back up.
        delete document.documentElement.dataset.live;
        schedule();
        clearTimeout(retry);
        retry = setTimeout(wake, RETRY_CLOSED_MS);
      }
    });
  }

  function wake() {
    if (document.hidden) {
      return;
    }
    connect();
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      hiddenSince = Date.now();
      return;
    }
    const away = hiddenSince === null ? 0 : Date.now() - hiddenSince;
    hiddenSince = null;
    if (away > AWAY_MS || source.readyState === EventSource.CLOSED) {
      connect();
    }
  });
  document.addEventListener("resume", wake); // the page was frozen (Page Lifecycle)
  window.addEventListener("online", wake);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      wake(); // back from the back-forward cache: the old stream is gone
    }
  });
  connect();
}

// --- A form sent after the session ended ------------------------------------------------
// The server sends it to sign-in and then back to the page the form was on (it cannot
// replay the form: its token belonged to the old session). So that the text is not lost,
// the fields of every form sent are kept in this tab's sessionStorage until the next
// page: if that is the sign-in page, they wait; if the page after sign-in is the form's
// page again, its empty fields are filled back in and the reader told; any other page
// (the form was sent and answered) drops them.
const UNSENT = "pillarbox.unsent";
const KEPT_TYPES = new Set(["text", "email", "search", "url", "hidden"]);

function keepUnsent(event) {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") {
    return;
  }
  const action = new URL(form.action, window.location.href).pathname;
  if (action === "/signin" || action === "/signout") {
    return;
  }
  const fields = {};
  for (const el of form.elements) {
    const kept =
      el instanceof HTMLTextAreaElement || (el instanceof HTMLInputElement && KEPT_TYPES.has(el.type));
    if (kept && el.name && el.name !== "csrf" && el.value) {
      fields[el.name] = el.value;
    }
  }
  const page = window.location.pathname + window.location.search;
  try {
    sessionStorage.setItem(UNSENT, JSON.stringify({ page, action, fields }));
  } catch (error) {
    // storage full or off: nothing kept
  }
}

function restoreUnsent() {
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(UNSENT) || "null");
    if (kept === null) {
      return;
    }
    if (window.location.pathname === "/signin") {
      kept.signin = true; // on the way back: only then is the text restored
      sessionStorage.setItem(UNSENT, JSON.stringify(kept));
      return;
    }
    sessionStorage.removeItem(UNSENT);
  } catch (error) {
    return;
  }
  if (!kept.signin || kept.page !== window.location.pathname + window.location.search) {
    return;
  }
  const form = Array.from(document.forms).find(
    (f) => new URL(f.action, window.location.href).pathname === kept.action,
  );
  if (!form) {
    return;
  }
  let restored = false;
  for (const [name, value] of Object.entries(kept.fields)) {
    const el = form.elements.namedItem(name);
    if (el && "value" in el && el.name !== "csrf" && !el.value) {
      el.value = value;
      el.dispatchEvent(new Event("input", { bubbles: true }));
      restored = true;
    }
  }
  if (restored) {
    const note = document.createElement("p");
    note.className = "notice";
    note.setAttribute("role", "status");
    note.textContent =
      "Your session had ended, so this was not sent. Your text is back; attachments must be added again.";
    form.prepend(note);
  }
}

restoreUnsent(); // deferred script: the page is parsed, other scripts not yet started
document.addEventListener("submit", keepUnsent);
document.addEventListener("DOMContentLoaded", localTimes);
document.addEventListener("DOMContentLoaded", live);
document.addEventListener("keydown", shortcuts);
