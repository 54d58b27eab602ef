// Pillarbox webmail: address suggestions for any <input data-suggest> (To, Cc, Bcc).
// The field holds a comma-separated list; suggestions are for the address being typed
// last, from /suggest (the account's past correspondents). Keyboard: Down/Up move,
// Enter or Tab takes the highlighted one, Escape closes. A combobox with a listbox
// (WAI-ARIA), so screen readers announce the choices. No third-party code.
"use strict";

(function () {
  const DELAY = 120; // ms of quiet typing before asking the server
  let serial = 0;

  // Where the last address starts: after the last comma or semicolon outside quotes.
  function lastStart(value) {
    let start = 0;
    let quoted = false;
    for (let i = 0; i < value.length; i += 1) {
      const c = value[i];
      if (c === "\\" && quoted) {
        i += 1;
      } else if (c === '"') {
        quoted = !quoted;
      } else if ((c === "," || c === ";") && !quoted) {
        start = i + 1;
      }
    }
    return start;
  }

  function attach(input) {
    serial += 1;
    const list = document.createElement("ul");
    list.id = "suggest-" + serial;
    list.className = "suggestions";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    input.insertAdjacentElement("afterend", list);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("autocomplete", "off");
    let timer = null;
    let active = -1;
    let asked = 0;

    function options() {
      return Array.from(list.children);
    }

    function close() {
      list.hidden = true;
      list.replaceChildren();
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      const items = options();
      if (!items.length) {
        return;
      }
      active = (index + items.length) % items.length;
      items.forEach((item, i) => item.setAttribute("aria-selected", String(i === active)));
      input.setAttribute("aria-activedescendant", items[active].id);
      items[active].scrollIntoView({ block: "nearest" });
    }

    function choose(text) {
      const value = input.value;
      const start = lastStart(value);
      const before = value.slice(0, start).replace(/\s*$/, "");
      input.value = (before ? before + " " : "") + text + ", ";
      close();
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function show(found) {
      list.replaceChildren();
      active = -1;
      found.forEach((text, i) => {
        const item = document.createElement("li");
        item.id = list.id + "-" + i;
        item.setAttribute("role", "option");
        item.setAttribute("aria-selected", "false");
        item.textContent = text;
        // mousedown, not click: it comes before the input's blur closes the list
        item.addEventListener("mousedown", (event) => {
          event.preventDefault();
          choose(text);
        });
        list.appendChild(item);
      });
      list.hidden = found.length === 0;
      input.setAttribute("aria-expanded", String(found.length > 0));
    }

    async function ask() {
      const typed = input.value.slice(lastStart(input.value)).trim();
      if (!typed) {
        close();
        return;
      }
      asked += 1;
      const mine = asked;
      try {
        const reply = await fetch("/suggest?q=" + encodeURIComponent(typed), {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        if (!reply.ok || reply.redirected || mine !== asked) {
          return;
        }
        show(await reply.json());
      } catch (error) {
        close(); // offline or signed out: typing still works
      }
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(ask, DELAY);
    });
    input.addEventListener("keydown", (event) => {
      if (list.hidden) {
        return;
      }
      if (event.key === "ArrowDown") {
        event.preventDefault();
        highlight(active + 1);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        highlight(active - 1);
      } else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
        event.preventDefault(); // take the suggestion, do not submit the form
        choose(options()[active].textContent);
      } else if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", () => {
      setTimeout(close, 150);
    });
  }

  // Attached when a field first gets focus: fields a page adds or swaps in later (the
  // live updates replace <main>) work too, and a page nobody types in costs nothing.
  document.addEventListener("focusin", (event) => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.matches("input[data-suggest]")) {
      if (!input.dataset.suggestReady) {
        input.dataset.suggestReady = "1";
        attach(input);
      }
    }
  });
})();
