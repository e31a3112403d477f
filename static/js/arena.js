// Keys 0-9 answer a round; Enter or n starts the next one. Everything also works by clicking, and without JS.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
    if (/^[0-9]$/.test(event.key)) {
      var button = document.querySelector('#choices button[data-key="' + event.key + '"]');
      if (button && !button.disabled) { event.preventDefault(); button.click(); }
    } else if (event.key === "n" || event.key === "N") {
      var next = document.getElementById("new-round");
      if (next && !next.disabled) { event.preventDefault(); next.click(); }
    }
  });
  // After htmx swaps the stage, move focus into it so keyboard and screen-reader users follow along.
  document.addEventListener("htmx:afterSwap", function (event) {
    var stage = document.getElementById("stage");
    if (!stage) return;
    var focusable = stage.querySelector("#new-round, #choices button");
    if (focusable) focusable.focus({ preventScroll: true });
  });
  // Countdowns (event time left, a shared image's timer): [data-countdown-to] holds an ISO time. At zero the
  // answer buttons on the page are disabled; the server refuses late answers anyway.
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown-to]").forEach(function (el) {
      var end = Date.parse(el.getAttribute("data-countdown-to"));
      if (isNaN(end)) return;
      var left = Math.max(0, Math.ceil((end - now) / 1000));
      el.textContent = el.getAttribute("data-format") === "clock"
        ? Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0")
        : String(left);
      if (left === 0 && !el.classList.contains("expired")) {
        el.classList.add("expired");
        var stage = el.closest("#stage");
        if (stage) stage.querySelectorAll("#choices button").forEach(function (b) { b.disabled = true; });
      }
    });
  }
  setInterval(tick, 250);
  document.addEventListener("DOMContentLoaded", tick);
})();
