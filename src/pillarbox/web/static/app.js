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

document.addEventListener("DOMContentLoaded", localTimes);
document.addEventListener("keydown", shortcuts);
