// Pillarbox webmail: on a phone-width screen the folder list folds into a menu behind the
// header's button. Without this script the list simply stays open above the messages,
// so the class that hides it (js-nav) is only set here.
"use strict";

function folderMenu() {
  const button = document.querySelector(".menu-toggle");
  if (!button || !document.querySelector(".folders")) {
    return;
  }
  const root = document.documentElement;
  root.classList.add("js-nav");
  const isOpen = () => root.classList.contains("nav-open");
  function set(open) {
    root.classList.toggle("nav-open", open);
    button.setAttribute("aria-expanded", String(open));
  }
  button.addEventListener("click", () => set(!isOpen()));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && isOpen()) {
      set(false);
      button.focus();
    }
  });
  // A tap outside the open menu closes it, as a native menu would.
  document.addEventListener("click", (event) => {
    if (isOpen() && !event.target.closest(".folders, .menu-toggle")) {
      set(false);
    }
  });
}

document.addEventListener("DOMContentLoaded", folderMenu);
