// No approval without sight: a decision is about what the person has seen. Whatever a page offers to
// decide sits in an element marked data-sight; a press on it sooner than its settle time after it was
// painted, or a key that went down before it was painted, is refused here with a brief hint and does
// nothing else. The server refuses such a decision too (approvals/review/sight.py sets the settle time
// the page carries in data-settle-ms).
(function () {
  "use strict";

  var DEFAULT_HINT = "Look first: this proposal just appeared";
  var hint = null;
  var hintTimer = null;

  function settleOf(element) {
    return Number(element.dataset.settleMs) || 500;
  }

  function painted(element) {
    element.removeAttribute("data-settled");
    element.dataset.paintedAt = String(performance.now());
    // The frame that shows it is drawn after this task: count from that frame.
    requestAnimationFrame(function () {
      element.dataset.paintedAt = String(performance.now());
      setTimeout(function () { element.setAttribute("data-settled", ""); }, settleOf(element));
    });
  }

  function mark(content) {
    if (!content || !content.querySelectorAll) return;
    if (content.matches("[data-sight]")) painted(content);
    Array.prototype.forEach.call(content.querySelectorAll("[data-sight]"), painted);
  }

  function showHint(text) {
    if (!hint) {
      hint = document.createElement("p");
      hint.className = "sight-hint";
      hint.setAttribute("aria-live", "polite");
      document.body.appendChild(hint);
    }
    hint.textContent = text;
    clearTimeout(hintTimer);
    hintTimer = setTimeout(function () { hint.textContent = ""; }, 2500);
  }

  // Whether `event` may decide what `element` belongs to: true where nothing is marked, or where it
  // was painted at least its settle time before the event happened. Otherwise it shows the hint.
  function allows(element, event) {
    var shown = element && element.closest && element.closest("[data-sight]");
    if (!shown) return true;
    var paintedAt = Number(shown.dataset.paintedAt);
    if (paintedAt && event.timeStamp - paintedAt >= settleOf(shown)) return true;
    showHint(shown.dataset.sightHint || DEFAULT_HINT);
    return false;
  }

  function refuse(event) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }

  // Capturing, so that a refused press never reaches htmx or the form.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[type='submit'], input[type='submit']");
    if (button && !allows(button, event)) refuse(event);
  }, true);

  document.addEventListener("keydown", function (event) {
    var field = event.key === "Enter" && event.target.closest && event.target.closest("form input");
    if (field && !allows(field, event)) refuse(event);
  }, true);

  document.addEventListener("submit", function (event) {
    if (!allows(event.target, event)) refuse(event);
  }, true);

  if (window.htmx) htmx.onLoad(mark);
  else document.addEventListener("DOMContentLoaded", function () { mark(document.body); });

  window.countersignSight = { allows: allows };
})();
