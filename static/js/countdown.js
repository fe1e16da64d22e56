// Live countdown for active overrides. The server gives the seconds left when it rendered the
// page; the browser counts down from there on its own monotonic clock, so a skewed wall clock
// on either side does not matter. At zero the blocked list asks the server again.
(function () {
  function format(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  // A countdown inside a sentence ("for 42 more minutes: writes pass") counts whole minutes,
  // rounded up, and says what it ends in with the words the page gives.
  function formatMinutes(seconds, element) {
    var minutes = Math.ceil(seconds / 60);
    return "for " + minutes + " more minute" + (minutes === 1 ? "" : "s") + (element.dataset.countdownSuffix || "");
  }

  function start(element) {
    if (element.dataset.countdownStarted) return;
    element.dataset.countdownStarted = "1";
    var total = parseInt(element.dataset.countdownSeconds, 10) || 0;
    var began = performance.now();
    var inMinutes = element.dataset.countdownFormat === "minutes";
    function tick() {
      var left = Math.max(0, total - Math.floor((performance.now() - began) / 1000));
      element.textContent = inMinutes ? formatMinutes(left, element) : format(left);
      if (left === 0) {
        element.classList.add("ended");
        element.textContent = element.dataset.countdownEnded || "0:00 (ended; the block is back)";
        // A moment's grace so the server's clock has passed the end too when it is asked again.
        setTimeout(function () {
          element.dispatchEvent(new CustomEvent("countdown-ended", { bubbles: true }));
        }, 1000);
        return;
      }
      setTimeout(tick, 1000 - ((performance.now() - began) % 1000));
    }
    tick();
  }

  function startAll(root) {
    (root || document).querySelectorAll("[data-countdown-seconds]").forEach(start);
  }

  document.addEventListener("DOMContentLoaded", function () { startAll(document); });
  document.addEventListener("htmx:load", function (event) { startAll(event.detail.elt); });
})();
