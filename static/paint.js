// Fool it by hand (issue #21): the painting board. Pointer events (mouse, pen and touch alike) draw strokes on the
// canvas; each stroke goes to the JSON API, which applies it on the server within the budget and answers with the
// opponent's top 3. The canvas then shows the server's painted image, never only the local one. Keyboard: arrows
// move a cursor, L/D (brush) or W/B/G/O (pencil) paint the pixel under it as a one-point stroke.
(function () {
  "use strict";
  var root = document.getElementById("paint");
  if (!root) return;
  var canvas = document.getElementById("paint-canvas");
  var context = canvas.getContext("2d");
  var tool = root.dataset.tool;
  var width = Number(root.dataset.width), height = Number(root.dataset.height), scale = Number(root.dataset.scale);
  var status = root.dataset.status;
  var image = new Image();
  var cursor = { x: Math.floor(width / 2), y: Math.floor(height / 2), shown: false };
  var mode = tool === "brush" ? { amount: 16 } : { value: 255 };
  var stroke = null;
  var queue = Promise.resolve();
  var revision = 0;

  function draw() {
    context.imageSmoothingEnabled = false;
    if (image.complete && image.naturalWidth) context.drawImage(image, 0, 0, width * scale, height * scale);
    if (stroke) {
      context.fillStyle = "rgba(255, 64, 64, 0.55)";
      stroke.points.forEach(function (p) { context.fillRect(p[0] * scale, p[1] * scale, scale, scale); });
    }
    if (cursor.shown) {
      context.strokeStyle = "#ff4081";
      context.lineWidth = 2;
      context.strokeRect(cursor.x * scale + 1, cursor.y * scale + 1, scale - 2, scale - 2);
    }
  }

  function reload() {
    revision += 1;
    image.src = root.dataset.paintedUrl + "?r=" + revision;
  }
  image.onload = draw;
  reload();

  function pixelOf(event) {
    var box = canvas.getBoundingClientRect();
    var x = Math.floor(((event.clientX - box.left) / box.width) * width);
    var y = Math.floor(((event.clientY - box.top) / box.height) * height);
    if (x < 0 || y < 0 || x >= width || y >= height) return null;
    return [x, y];
  }

  function addPoint(point) {
    if (!point || !stroke) return;
    var last = stroke.points[stroke.points.length - 1];
    if (last && last[0] === point[0] && last[1] === point[1]) return;
    if (stroke.points.length < 400) stroke.points.push(point);
  }

  function body(points) {
    var out = { tool: tool, points: points };
    if (tool === "brush") out.amount = mode.amount; else out.value = mode.value;
    return out;
  }

  function api(url, payload) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf, "Accept": "application/json" },
      body: payload === undefined ? undefined : JSON.stringify(payload),
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, status: response.status, data: data }; });
    });
  }

  function say(text) { document.getElementById("paint-status").textContent = text; }

  function showAnswer(data) {
    var list = document.getElementById("paint-top3");
    list.innerHTML = "";
    data.top3.forEach(function (guess) {
      var item = document.createElement("li");
      var name = document.createElement("strong");
      name.textContent = guess.label;
      item.appendChild(name);
      item.appendChild(document.createTextNode(" " + Math.round(guess.probability * 100) + "%"));
      list.appendChild(item);
    });
    document.getElementById("paint-size").textContent =
      "Changed " + data.pixels + " pixels · L2 " + data.l2.toFixed(2) + " · strokes " + data.strokes;
  }

  function finish(data) {
    status = data.status;
    root.dataset.status = status;
    if (status === "fooled") {
      say("Fooled! The machine now says " + data.model_label + ".");
      document.getElementById("paint-points").textContent = data.points + " points";
    } else {
      say("You gave up. The machine still says " + data.model_label + ".");
    }
    var result = document.getElementById("paint-result");
    result.hidden = false;
    document.getElementById("paint-comparison").textContent = "Working out the machine's best attack on this image…";
    fetch(root.dataset.resultUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (full) {
        if (full.comparison) document.getElementById("paint-comparison").textContent = full.comparison;
        else document.getElementById("paint-comparison").textContent = "";
        if (full.machine) {
          var machine = document.getElementById("paint-machine");
          machine.src = root.dataset.paintedUrl.replace("painted.png", "machine.png");
        }
      });
  }

  function send(points) {
    if (status !== "painting" || !points.length) return;
    var payload = body(points);
    queue = queue.then(function () {
      if (status !== "painting") return null;
      return api(root.dataset.strokesUrl, payload).then(function (reply) {
        if (!reply.ok) { say(reply.data.detail || "That stroke was refused."); reload(); return; }
        showAnswer(reply.data);
        reload();
        if (reply.data.status !== "painting") finish(reply.data);
        else say("The machine says " + reply.data.model_label + ". Keep going.");
      }).catch(function () { say("No answer from the server; try that stroke again."); });
    });
  }

  canvas.addEventListener("pointerdown", function (event) {
    if (status !== "painting") return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    stroke = { points: [] };
    addPoint(pixelOf(event));
    draw();
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!stroke) return;
    event.preventDefault();
    var events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    (events.length ? events : [event]).forEach(function (e) { addPoint(pixelOf(e)); });
    draw();
  });
  function end(event) {
    if (!stroke) return;
    event.preventDefault();
    var points = stroke.points;
    stroke = null;
    send(points);
    draw();
  }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  var keyModes = tool === "brush" ? { l: { amount: 16 }, d: { amount: -16 } }
    : { w: { value: 255 }, b: { value: 0 }, g: { value: 128 } };
  canvas.addEventListener("focus", function () { cursor.shown = true; draw(); tellCursor(); });
  canvas.addEventListener("blur", function () { cursor.shown = false; draw(); });
  function tellCursor() {
    document.getElementById("paint-cursor").textContent = "Cursor at column " + (cursor.x + 1) + ", row " + (cursor.y + 1);
  }
  canvas.addEventListener("keydown", function (event) {
    var moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (moves[key]) {
      event.preventDefault();
      cursor.x = Math.min(width - 1, Math.max(0, cursor.x + moves[key][0]));
      cursor.y = Math.min(height - 1, Math.max(0, cursor.y + moves[key][1]));
      draw();
      tellCursor();
      return;
    }
    var chosen = keyModes[key];
    if (tool === "pencil" && key === "o") chosen = { original: true };
    if (!chosen) return;
    event.preventDefault();
    if (chosen.original) {
      originalValue(cursor.x, cursor.y, function (value) {
        var saved = mode; mode = { value: value }; send([[cursor.x, cursor.y]]); mode = saved;
      });
      return;
    }
    var saved = mode;
    mode = chosen;
    send([[cursor.x, cursor.y]]);
    mode = saved;
  });

  var clean = null;
  function originalValue(x, y, done) {
    function read() {
      var scratch = document.createElement("canvas");
      scratch.width = width; scratch.height = height;
      var c = scratch.getContext("2d");
      c.drawImage(clean, 0, 0);
      done(c.getImageData(x, y, 1, 1).data[0]);
    }
    if (clean && clean.complete) { read(); return; }
    clean = new Image();
    clean.onload = read;
    clean.src = root.dataset.cleanUrl;
  }

  document.querySelectorAll(".paint-controls .mode").forEach(function (button) {
    button.addEventListener("click", function () {
      document.querySelectorAll(".paint-controls .mode").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
      button.setAttribute("aria-pressed", "true");
      mode = tool === "brush" ? { amount: Number(button.dataset.amount) } : { value: Number(button.dataset.value) };
    });
  });
  document.getElementById("give-up").addEventListener("click", function () {
    if (status !== "painting") return;
    queue = queue.then(function () {
      return api(root.dataset.giveUpUrl).then(function (reply) { if (reply.ok) finish(reply.data); });
    });
  });
  if (status !== "painting") {
    fetch(root.dataset.resultUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(finish);
  }
  // The script is deferred: a quick Tab (or a test) can focus the canvas before the focus listener above exists.
  if (document.activeElement === canvas) { cursor.shown = true; draw(); tellCursor(); }
  root.dataset.ready = "true";
})();
