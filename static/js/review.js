// Review screens: keys to decide and move, and how htmx shows a refused decision.
(function () {
  "use strict";

  if (window.htmx) {
    // A refused decision (403, 404, 409, 422) answers with the proposal and the reason: show it.
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "^(403|404|409|422)$", swap: true, error: false },
      { code: "[23]..", swap: true },
      { code: "[45]..", swap: false, error: true }
    ];
  }

  function isTyping(element) {
    return element && element.closest && element.closest("input, textarea, select, [contenteditable='true']");
  }

  function press(selector) {
    var element = document.querySelector(selector);
    if (!element || element.disabled) return false;
    // htmx wires up swapped-in content a moment after the swap; a key pressed within that moment
    // must still go through htmx rather than load a whole page.
    if (window.htmx) htmx.process(element.closest("form") || element);
    element.click();
    return true;
  }

  function toggleHelp() {
    var help = document.getElementById("review-help");
    if (!help) return;
    if (help.open) help.close(); else help.showModal();
  }

  function moveRow(step) {
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-row]"));
    if (!rows.length) return false;
    var current = rows.findIndex(function (row) { return row.classList.contains("is-current"); });
    var next = Math.min(rows.length - 1, Math.max(0, current === -1 ? 0 : current + step));
    rows.forEach(function (row) { row.classList.remove("is-current"); });
    rows[next].classList.add("is-current");
    var link = rows[next].querySelector("a.open");
    if (link) link.focus();
    return true;
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-key='help']")) toggleHelp();
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    // A question asked before approving (confirm.js) has the keys: Enter answers it, Esc closes it.
    if (document.querySelector("dialog.confirm[open]")) return;
    var help = document.getElementById("review-help");
    if (help && help.open && event.key !== "?") return;
    switch (event.key) {
      case "a":
        // While a decision is on its way its button is disabled, so a second press does nothing; a press
        // on a proposal that has only just been painted is refused (sight.js), so it never decides the next.
        var approve = document.querySelector("[data-key='approve']");
        if (approve && window.countersignSight && !countersignSight.allows(approve, event)) event.preventDefault();
        else if (press("[data-key='approve']")) event.preventDefault();
        break;
      case "r":
        var reason = document.querySelector("[data-key='reason']");
        if (reason) { event.preventDefault(); reason.focus(); }
        break;
      case "j":
        if (press("[data-key='next']") || moveRow(1)) event.preventDefault();
        break;
      case "k":
        if (press("[data-key='previous']") || moveRow(-1)) event.preventDefault();
        break;
      case "?":
        event.preventDefault();
        toggleHelp();
        break;
    }
  });
})();
