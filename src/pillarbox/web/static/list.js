// Pillarbox webmail: selecting messages in a folder's list and acting on them.
//
// The list works without this script: each row has a checkbox that belongs to the
// toolbar's form (form="list-actions"), and the toolbar's buttons post it. This adds
// select-all, shift-click ranges, keys (j/k move, x select, e archive, # delete) and
// dragging selected rows (or one row) onto a folder in the sidebar to move them.
//
// The live-update script swaps the page's <main> in when the mailbox changes, so
// nothing here holds on to elements: events are handled on the document, and the
// selection is kept as a set of UIDs (for this folder and UIDVALIDITY) that is put
// back on the new checkboxes after each swap.
"use strict";

(function () {
  const DRAG_TYPE = "application/x-pillarbox-uids";
  let selected = new Set();
  let selectionOf = "";
  let lastClicked = null;
  let cursor = null;

  function form() {
    return document.getElementById("list-actions");
  }

  function boxes() {
    return Array.from(document.querySelectorAll("input.pick"));
  }

  function folderKey() {
    const f = form();
    return f ? f.elements.f.value + "\n" + f.elements.v.value : "";
  }

  // Put the remembered selection back (after a live swap), forgetting UIDs that left.
  function restore() {
    const key = folderKey();
    if (key !== selectionOf) {
      selected = new Set();
      selectionOf = key;
      lastClicked = null;
      cursor = null;
    }
    const present = new Set();
    for (const box of boxes()) {
      present.add(box.value);
      if (selected.has(box.value)) {
        box.checked = true;
      } else if (box.checked) {
        selected.add(box.value); // the browser kept it (back button)
      }
    }
    for (const uid of Array.from(selected)) {
      if (!present.has(uid)) {
        selected.delete(uid);
      }
    }
    const all = document.querySelector(".select-all");
    if (all) {
      all.hidden = false;
    }
    if (cursor !== null) {
      const row = document.querySelector('.list li[data-uid="' + cursor + '"]');
      if (row) {
        row.classList.add("cursor");
      }
    }
    update();
  }

  // Rows and toolbar reflect the selection; the buttons only work with one.
  function update() {
    const f = form();
    if (!f) {
      return;
    }
    for (const box of boxes()) {
      box.closest("li").classList.toggle("picked", box.checked);
    }
    const count = selected.size;
    for (const button of f.querySelectorAll("button[name=action]")) {
      button.disabled = count === 0;
    }
    const all = document.getElementById("select-all");
    if (all) {
      const total = boxes().length;
      all.checked = total > 0 && count === total;
      all.indeterminate = count > 0 && count < total;
    }
  }

  function setBox(box, on) {
    box.checked = on;
    if (on) {
      selected.add(box.value);
    } else {
      selected.delete(box.value);
    }
  }

  function onClick(event) {
    const box = event.target.closest("input.pick");
    if (box) {
      const list = boxes();
      if (event.shiftKey && lastClicked !== null) {
        const from = list.findIndex((b) => b.value === lastClicked);
        const to = list.indexOf(box);
        if (from >= 0 && to >= 0) {
          for (let i = Math.min(from, to); i <= Math.max(from, to); i++) {
            setBox(list[i], box.checked);
          }
        }
      } else {
        setBox(box, box.checked);
      }
      lastClicked = box.value;
      update();
      return;
    }
    if (event.target.id === "select-all") {
      for (const b of boxes()) {
        setBox(b, event.target.checked);
      }
      update();
    }
  }

  // Ask before deleting for good (the button says so with data-confirm).
  function onSubmit(event) {
    const button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
  }

  function submit(action) {
    const f = form();
    const button = f && f.querySelector('button[name=action][value="' + action + '"]');
    if (button && !button.disabled) {
      f.requestSubmit(button);
    }
  }

  function moveCursor(step) {
    const rows = Array.from(document.querySelectorAll(".list li[data-uid]"));
    if (rows.length === 0) {
      return;
    }
    let at = rows.findIndex((r) => r.dataset.uid === cursor);
    at = at < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, at + step));
    for (const r of rows) {
      r.classList.remove("cursor");
    }
    const row = rows[at];
    cursor = row.dataset.uid;
    row.classList.add("cursor");
    row.querySelector("a").focus();
  }

  function onKey(event) {
    if (!form() || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (event.target.closest("input:not(.pick), textarea, select, [contenteditable]")) {
      return;
    }
    if (event.key === "j") {
      moveCursor(1);
    } else if (event.key === "k") {
      moveCursor(-1);
    } else if (event.key === "x" && cursor !== null) {
      const box = document.querySelector('input.pick[value="' + cursor + '"]');
      if (box) {
        setBox(box, !box.checked);
        lastClicked = box.value;
        update();
      }
    } else if (event.key === "#") {
      submit("delete");
    } else if (event.key === "e") {
      submit("archive");
    } else {
      return;
    }
    event.preventDefault();
  }

  // Dragging a selected row drags the whole selection; any other row drags itself.
  function onDragStart(event) {
    const row = event.target.closest && event.target.closest(".list li[data-uid]");
    if (!row || !form()) {
      return;
    }
    const uids = selected.has(row.dataset.uid) ? Array.from(selected) : [row.dataset.uid];
    event.dataTransfer.setData(DRAG_TYPE, uids.join(","));
    event.dataTransfer.setData("text/plain", uids.length + " message(s)");
    event.dataTransfer.effectAllowed = "move";
    document.body.classList.add("dragging");
  }

  function target(event) {
    const link = event.target.closest && event.target.closest(".folders a[data-folder]");
    if (!link || !event.dataTransfer || !event.dataTransfer.types.includes(DRAG_TYPE)) {
      return null;
    }
    return link;
  }

  function onDragOver(event) {
    const link = target(event);
    if (link) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      link.classList.add("drop");
    }
  }

  function onDragLeave(event) {
    const link = target(event);
    if (link && !link.contains(event.relatedTarget)) {
      link.classList.remove("drop");
    }
  }

  function onDragEnd() {
    document.body.classList.remove("dragging");
    for (const link of document.querySelectorAll(".folders a.drop")) {
      link.classList.remove("drop");
    }
  }

  // The drop posts the toolbar's form: those UIDs, action "move", the folder dropped on.
  function onDrop(event) {
    const link = target(event);
    const f = form();
    if (!link || !f) {
      return;
    }
    event.preventDefault();
    onDragEnd();
    const uids = event.dataTransfer.getData(DRAG_TYPE).split(",");
    for (const box of boxes()) {
      box.checked = uids.includes(box.value);
    }
    const select = f.elements.to;
    const folder = link.dataset.folder;
    if (!Array.from(select.options).some((o) => o.value === folder)) {
      select.add(new Option(folder, folder)); // the open folder: the server says "already in"
    }
    select.value = folder;
    const button = f.querySelector('button[name=action][value="move"]');
    button.disabled = false;
    f.requestSubmit(button);
  }

  // After any swap of the page's content (however much of it the live update
  // replaces), once per batch of changes.
  let queued = false;
  function restoreSoon() {
    if (!queued) {
      queued = true;
      queueMicrotask(() => {
        queued = false;
        restore();
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    restore();
    const main = document.querySelector("main");
    if (main) {
      new MutationObserver(restoreSoon).observe(main, { childList: true, subtree: true });
    }
  });
  document.addEventListener("click", onClick);
  document.addEventListener("submit", onSubmit);
  document.addEventListener("keydown", onKey);
  document.addEventListener("dragstart", onDragStart);
  document.addEventListener("dragover", onDragOver);
  document.addEventListener("dragleave", onDragLeave);
  document.addEventListener("dragend", onDragEnd);
  document.addEventListener("drop", onDrop);
})();
