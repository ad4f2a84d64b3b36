// Small progressive enhancements for the portal. Every page works without this file.
// No inline handlers anywhere: the pages must run under a Content-Security-Policy
// without 'unsafe-inline', so all behaviour is attached here.
(function () {
  "use strict";

  function reveal(root) {
    root.querySelectorAll(".js-only[hidden]").forEach(function (el) { el.hidden = false; });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Fallback for plain-http hosts: copy through a temporary selection.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy-target]");
    if (copy) {
      var source = document.getElementById(copy.getAttribute("data-copy-target"));
      if (!source) { return; }
      var label = copy.textContent;
      copyText(source.textContent.trim()).then(function () {
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = label; }, 2000);
      });
      return;
    }
    var remove = event.target.closest("[data-remove-row]");
    if (remove) {
      var row = remove.closest(".claim-row");
      var next = row && (row.nextElementSibling || row.previousElementSibling);
      if (row) { row.remove(); }
      var focusable = next && next.querySelector("input");
      if (focusable) { focusable.focus(); }
    }
  });

  // Ticking a scope ticks the API that offers it (the server does the same without JS).
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.name !== "scopes" || !box.checked) { return; }
    var api = box.closest(".api");
    var apiBox = api && api.querySelector("input[name=audience]");
    if (apiBox) { apiBox.checked = true; }
  });

  document.addEventListener("DOMContentLoaded", function () {
    reveal(document);
    // The secret-once page answers a POST: swap its history entry for the client's page so
    // that reload, back and history open that page (suffixes only), never the secret.
    var marker = document.querySelector("[data-replace-url]");
    if (marker && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", marker.getAttribute("data-replace-url"));
    }
  });

  // A button that creates or changes something is disabled on the first click, so a double
  // click sends one request. Only a courtesy: the server claims each form's one-time token, so a
  // second submission changes nothing anyway. Disabled after the submit event (a disabled
  // submitter would drop out of the form's data); enabled again when the page comes back from
  // the back-forward cache or an htmx request ends.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || (form.method || "").toLowerCase() !== "post") { return; }
    var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
    setTimeout(function () {
      buttons.forEach(function (button) {
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
      });
    }, 0);
  });
  function enableAll(root) {
    root.querySelectorAll("button[aria-busy=true]").forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    });
  }
  window.addEventListener("pageshow", function () { enableAll(document); });
  document.addEventListener("htmx:afterRequest", function () { enableAll(document); });

  // Fragments swapped in by htmx may hold buttons that need this script too.
  document.addEventListener("htmx:afterSwap", function (event) { reveal(event.target); });
  document.addEventListener("htmx:oobAfterSwap", function (event) { reveal(event.target); });
  document.addEventListener("htmx:afterSwap", function (event) {
    var input = event.target.lastElementChild && event.target.lastElementChild.querySelector
      && event.target.lastElementChild.querySelector(".claim-row input");
    if (event.target.id === "claim-rows" && input) { input.focus(); }
  });
})();
