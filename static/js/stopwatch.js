// The trace drill's clock. The server gives the seconds since the drill started when it drew the page;
// the browser counts on from there on its own monotonic clock, and marks the clock once it passes the
// drill's target.
(function () {
  function format(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  function start(element) {
    if (element.dataset.stopwatchStarted) return;
    element.dataset.stopwatchStarted = "1";
    var from = parseInt(element.dataset.elapsedSeconds, 10) || 0;
    var target = parseInt(element.dataset.targetSeconds, 10) || 0;
    var began = performance.now();
    function tick() {
      var seconds = from + Math.floor((performance.now() - began) / 1000);
      element.textContent = format(seconds);
      element.classList.toggle("ended", target > 0 && seconds > target);
      setTimeout(tick, 1000 - ((performance.now() - began) % 1000));
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-elapsed-seconds]").forEach(start);
  });
})();
