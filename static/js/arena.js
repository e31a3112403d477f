// Keys 0-9 answer a round; Enter or n starts the next one. Everything also works by clicking, and without JS.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
    if (/^[0-9]$/.test(event.key)) {
      var button = document.querySelector('#choices button[data-key="' + event.key + '"]');
      if (button && !button.disabled && !button.closest("[hidden]")) { event.preventDefault(); button.click(); }
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
  // A phone's stage refresh (an event's status stream) is dropped when the stage already shows that status: the
  // stream sends the current status whenever it (re)connects, and redrawing then would throw away the round or
  // reveal a request in flight is about to show.
  document.addEventListener("htmx:confirm", function (event) {
    var source = event.detail.elt;
    var trigger = event.detail.triggeringEvent;
    if (!source || source.id !== "stage-refresh" || !trigger || !trigger.detail) return;
    var stage = document.getElementById("stage");
    if (stage && stage.getAttribute("data-status-key") === String(trigger.detail.data)) event.preventDefault();
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

  // Flash mode: the image shows for data-flash-ms, then a mask, then the choices. Visibility changes are made in
  // requestAnimationFrame callbacks, so each lands on a painted frame; the time between the frame that showed the
  // image and the frame that masked it is what was on screen, and goes back with the answer (shown_ms). Without
  // JavaScript the image simply stays up and the answer is recorded without a measurement (flagged).
  function prepareFlash() {
    document.querySelectorAll(".flash-figure:not([data-flash-ready])").forEach(function (figure) {
      figure.setAttribute("data-flash-ready", "1");
      var img = figure.querySelector("img");
      var mask = figure.querySelector(".flash-mask");
      var start = figure.querySelector(".flash-start");
      var form = document.getElementById("choices");
      var measured = form && form.querySelector(".flash-measured");
      var target = Number(figure.getAttribute("data-flash-ms"));
      if (!img || !mask || !start || !form || !measured || !(target > 0)) return;
      img.style.visibility = "hidden";
      form.hidden = true;
      start.hidden = false;
      start.disabled = true;
      var ready = img.decode ? img.decode() : Promise.resolve();
      ready.catch(function () {}).then(function () { start.disabled = false; start.focus(); });
      start.addEventListener("click", function () {
        start.hidden = true;
        requestAnimationFrame(function (shownAt) {
          img.style.visibility = "visible";
          requestAnimationFrame(function step(now) {
            // hide on the frame closest to the target: the image stays up until this frame is painted
            if (now - shownAt >= target - 8) {
              img.style.visibility = "hidden";
              mask.hidden = false;
              measured.value = (now - shownAt).toFixed(1);
              figure.setAttribute("data-flash-measured", measured.value);
              form.hidden = false;
              var first = form.querySelector("button");
              if (first) first.focus({ preventScroll: true });
            } else {
              requestAnimationFrame(step);
            }
          });
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", prepareFlash);
  document.addEventListener("htmx:afterSwap", prepareFlash);
})();
