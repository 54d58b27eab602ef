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

// Live updates: a page marked data-live listens to /events (server-sent events fed by
// the server's change bus) and, after any change of the account, fetches itself again
// and swaps in the new content: new mail, and mail read, flagged or removed from
// another device, show up without a reload. Changes arriving together cost one fetch.
function live() {
  if (!document.querySelector("[data-live]") || !window.EventSource) {
    return;
  }
  const source = new EventSource("/events");
  let pending = null;
  async function refresh() {
    pending = null;
    const reply = await fetch(window.location.href, { credentials: "same-origin" });
    if (reply.redirected || !reply.ok) {
      source.close(); // signed out or gone: the next navigation shows why
      return;
    }
    const page = new DOMParser().parseFromString(await reply.text(), "text/html");
    const fresh = page.querySelector("main");
    if (fresh) {
      document.querySelector("main").replaceChildren(...fresh.childNodes);
      document.title = page.title;
      localTimes();
    }
  }
  source.addEventListener("change", () => {
    if (pending === null) {
      pending = setTimeout(refresh, 150);
    }
  });
}

document.addEventListener("DOMContentLoaded", localTimes);
document.addEventListener("DOMContentLoaded", live);
document.addEventListener("keydown", shortcuts);
