// The compose page's editor: formatted text in a contenteditable, a plain-text mode,
// files dropped on the form, and drafts saved automatically. Without this script the
// form still works: the plain textarea, the file field, the Send and Save buttons.
// The server cleans whatever markup arrives (web/compose_html.py); nothing here is
// trusted for safety.
(function () {
  "use strict";
  var form = document.querySelector("form.compose");
  if (!form) { return; }
  var textarea = form.querySelector("textarea[name=body]");
  var htmlField = form.querySelector("input[name=html]");
  var formatField = form.querySelector("input[name=format]");
  var editor = form.querySelector(".editor");
  var bar = form.querySelector(".editor-bar");
  var plainLabel = form.querySelector(".plain-body");
  var modeButton = bar.querySelector("[data-cmd=plain]");
  var fileInput = form.querySelector("input[type=file]");
  var status = form.querySelector(".compose-status");
  var maxSize = parseInt(form.getAttribute("data-max-size"), 10) || 0;
  var formatted = false;

  function escapeText(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function textToHtml(text) {
    return text.split("\n").map(function (line) {
      return "<div>" + (line ? escapeText(line) : "<br>") + "</div>";
    }).join("");
  }

  function setFormatted(on) {
    if (on) {
      editor.innerHTML = htmlField.value || textToHtml(textarea.value);
    } else {
      textarea.value = editor.innerText.replace(/\n$/, "");
    }
    formatted = on;
    formatField.value = on ? "html" : "plain";
    editor.hidden = !on;
    plainLabel.hidden = on;
    modeButton.setAttribute("aria-pressed", on ? "false" : "true");
    modeButton.textContent = on ? "Plain text" : "Formatted";
    bar.querySelectorAll("button:not(.mode)").forEach(function (b) { b.disabled = !on; });
  }

  // What the server gets: the editor's markup and its text, kept in the form fields.
  function sync() {
    if (formatted) {
      htmlField.value = editor.innerHTML;
      textarea.value = editor.innerText;
    }
  }

  function command(name) {
    editor.focus();
    if (name === "quote") {
      document.execCommand("formatBlock", false, "blockquote");
    } else if (name === "createLink") {
      var url = window.prompt("Link address (https://…)", "https://");
      if (url && /^(https?:\/\/|mailto:)/i.test(url.trim())) {
        document.execCommand("createLink", false, url.trim());
      }
    } else {
      document.execCommand(name, false, null);
    }
    changed();
  }

  bar.hidden = false;
  bar.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-cmd]");
    if (!button) { return; }
    var name = button.getAttribute("data-cmd");
    if (name === "plain") {
      if (formatted) { sync(); }
      setFormatted(!formatted);
      if (!formatted) { htmlField.value = ""; }
      changed();
    } else {
      command(name);
    }
  });
  editor.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey) || event.altKey) { return; }
    var key = event.key.toLowerCase();
    var names = { b: "bold", i: "italic", k: "createLink" };
    if (names[key]) {
      event.preventDefault();
      command(names[key]);
    }
  });
  setFormatted(form.getAttribute("data-prefer") !== "plain");

  // --- attachments: dropped files join the file field ----------------------------------
  function totalSize() {
    var total = 0;
    for (var i = 0; i < fileInput.files.length; i++) { total += fileInput.files[i].size; }
    return total;
  }
  function checkSize() {
    if (maxSize && totalSize() > maxSize) {
      status.textContent = "The files are larger than the limit of " +
        (maxSize / 1048576).toFixed(1) + " MB; the message cannot be sent.";
      status.classList.add("error");
      return false;
    }
    status.classList.remove("error");
    return true;
  }
  fileInput.addEventListener("change", function () { checkSize(); changed(); });
  form.addEventListener("dragover", function (event) {
    if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
      event.preventDefault();
      form.classList.add("dropping");
    }
  });
  form.addEventListener("dragleave", function () { form.classList.remove("dropping"); });
  form.addEventListener("drop", function (event) {
    form.classList.remove("dropping");
    if (!event.dataTransfer || !event.dataTransfer.files.length) { return; }
    event.preventDefault();
    var all = new DataTransfer();
    Array.prototype.forEach.call(fileInput.files, function (f) { all.items.add(f); });
    Array.prototype.forEach.call(event.dataTransfer.files, function (f) { all.items.add(f); });
    fileInput.files = all.files;
    checkSize();
    changed();
  });

  // --- drafts: saved about five seconds after the last change ---------------------------
  var timer = null;
  var saving = false;
  var waitingSubmit = null;

  function changed() {
    if (timer === null) { timer = window.setTimeout(autosave, 5000); }
  }

  function field(name) { return form.querySelector("input[name=" + name + "]"); }

  function showCarried(names) {
    var list = form.querySelector("ul.carried");
    if (!list) {
      list = document.createElement("ul");
      list.className = "carried";
      form.querySelector("fieldset.attach legend").after(list);
    }
    list.textContent = "";
    names.forEach(function (name, index) {
      var item = document.createElement("li");
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.name = "keep";
      box.value = String(index);
      box.checked = true;
      label.append(box, " " + name);
      item.append(label);
      list.append(item);
    });
  }

  function autosave() {
    timer = null;
    if (saving || !checkSize()) { return; }
    sync();
    var data = new FormData(form);
    data.set("action", "draft");
    data.set("autosave", "1");
    saving = true;
    status.textContent = "Saving draft…";
    fetch("/compose", { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (result) {
        if (!result.ok) { throw new Error(result.error || "not saved"); }
        field("draft_uid").value = result.draft_uid;
        field("draft_v").value = result.draft_v;
        fileInput.value = "";  // the files are in the draft now, listed as kept
        showCarried(result.attachments);
        status.textContent = "Draft saved at " + new Date().toLocaleTimeString();
        form.setAttribute("data-saved", result.draft_uid);
      })
      .catch(function (error) {
        status.textContent = "Draft not saved: " + error.message;
      })
      .finally(function () {
        saving = false;
        if (waitingSubmit) {
          var submitter = waitingSubmit;
          waitingSubmit = null;
          form.requestSubmit(submitter);
        }
      });
  }

  form.addEventListener("input", function (event) {
    if (event.target !== fileInput) { changed(); }
  });
  form.addEventListener("submit", function (event) {
    if (saving) {  // the draft's new UID is on its way: send after it
      event.preventDefault();
      waitingSubmit = event.submitter || form.querySelector("button[type=submit]");
      return;
    }
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    if (!checkSize()) {  // the server would refuse it: do not upload it all first
      event.preventDefault();
      return;
    }
    sync();
  });
})();
