// The policy lab and pick the moments (issue 19): replays of recorded CartPole episodes drawn on canvases from their
// states (no rendering library), the lab's controls (a new episode when the budget slider or the attack changes),
// and the round's timeline of picks (mouse, keyboard, or Space while the replay runs in slow motion). Everything
// the server needs is in plain forms; this only draws and fills them.
(function () {
  "use strict";
  var STEPS_PER_SECOND = 50; // CartPole-v1 advances 0.02 s a step
  var TRACK = 2.4; // the cart's track runs from -2.4 m to 2.4 m
  var ANGLE_SCALE = 0.2095; // the normalised state divides the pole angle by this

  function readEpisodes() {
    var node = document.getElementById("episodes-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function colour(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#fff";
  }

  // One frame of an episode: the cart and the pole at ``step``, the pole the agent saw when it was attacked.
  function drawFrame(canvas, episode, step) {
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height;
    var last = episode.states.length - 1;
    var i = Math.max(0, Math.min(step, last));
    var state = episode.states[i];
    var attacked = i < episode.actions.length && episode.attacked_steps.indexOf(i) !== -1;
    ctx.clearRect(0, 0, w, h);
    var ground = h * 0.78, scale = w / (2 * TRACK + 0.8);
    ctx.strokeStyle = colour("--line"); ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(0, ground); ctx.lineTo(w, ground); ctx.stroke();
    var cx = w / 2 + state[0] * scale, cartW = 0.5 * scale, cartH = 0.3 * scale, pole = 1.0 * scale;
    ctx.fillStyle = attacked ? colour("--bad") : colour("--muted");
    ctx.fillRect(cx - cartW / 2, ground - cartH, cartW, cartH);
    function drawPole(angle, style, width) {
      ctx.strokeStyle = style; ctx.lineWidth = width; ctx.lineCap = "round";
      ctx.beginPath(); ctx.moveTo(cx, ground - cartH);
      ctx.lineTo(cx + pole * Math.sin(angle), ground - cartH - pole * Math.cos(angle)); ctx.stroke();
    }
    if (attacked) { // what the agent was shown: the pole at the perturbed angle, faint
      ctx.globalAlpha = 0.45;
      drawPole(state[2] + episode.perturbations[i][2] * ANGLE_SCALE, colour("--bad"), 4);
      ctx.globalAlpha = 1;
    }
    drawPole(state[2], colour("--accent"), 6);
    ctx.fillStyle = colour("--ink"); ctx.font = "14px system-ui, sans-serif";
    var fell = i === last && episode.terminated;
    ctx.fillText("step " + i + (attacked ? " · attacked" : "") + (fell ? " · down" : ""), 8, 18);
    canvas.dataset.drawnStep = String(i);
  }

  // Replays every (canvas, episode) pair in step; ``onStep`` hears each new step.
  function Replay(pairs, onStep) {
    this.pairs = pairs; this.onStep = onStep; this.step = 0; this.speed = 1; this.running = false; this.frame = 0;
    this.length = Math.max.apply(null, pairs.map(function (p) { return p.episode.states.length; }));
    this.draw(0);
  }
  Replay.prototype.draw = function (step) {
    this.step = step;
    this.pairs.forEach(function (p) { drawFrame(p.canvas, p.episode, step); });
    if (this.onStep) this.onStep(step);
  };
  Replay.prototype.play = function () {
    var self = this, started = null, from = 0;
    cancelAnimationFrame(this.frame);
    this.running = true;
    function tick(now) {
      if (started === null) started = now;
      var step = from + Math.floor(((now - started) / 1000) * STEPS_PER_SECOND * self.speed);
      if (step >= self.length - 1) { self.draw(self.length - 1); self.running = false; return; }
      if (step !== self.step) self.draw(step);
      self.frame = requestAnimationFrame(tick);
    }
    this.draw(0);
    this.frame = requestAnimationFrame(tick);
  };
  Replay.prototype.setEpisodes = function (pairs) {
    cancelAnimationFrame(this.frame);
    Replay.call(this, pairs, this.onStep);
  };

  function stepLabel(step) {
    var label = document.getElementById("replay-step");
    if (label) label.textContent = "step " + step;
  }

  // -- the lab -------------------------------------------------------------------------------------------------
  function startLab(data) {
    var form = document.getElementById("lab-form");
    var pairs = function (d) {
      return [
        { canvas: document.getElementById("replay-clean"), episode: d.clean },
        { canvas: document.getElementById("replay-attacked"), episode: d.attacked },
      ];
    };
    var replay = new Replay(pairs(data), stepLabel);
    var speed = document.getElementById("replay-speed");
    document.getElementById("replay-play").addEventListener("click", function () {
      replay.speed = Number(speed.value) || 1; replay.play();
    });
    var budget = document.getElementById("lab-budget"), shown = document.getElementById("lab-budget-value");
    var timer = 0, asked = 0;
    function refresh() {
      var query = new URLSearchParams(new FormData(form)).toString();
      var mine = ++asked;
      form.setAttribute("aria-busy", "true");
      fetch("/api/v1/policy/episodes?" + query, { headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (d) {
          if (mine !== asked) return; // a newer request is on its way
          document.getElementById("clean-steps").textContent = d.clean["return"];
          document.getElementById("attacked-steps").textContent = d.attacked["return"];
          document.getElementById("attacked-count").textContent = d.attacked.attacked_steps.length;
          document.getElementById("lab-words").textContent = d.words;
          replay.setEpisodes(pairs(d));
          history.replaceState(null, "", "?" + query);
          replay.speed = Number(speed.value) || 1; replay.play();
        })
        .catch(function () {})
        .finally(function () { if (mine === asked) form.removeAttribute("aria-busy"); });
    }
    function later() { clearTimeout(timer); timer = setTimeout(refresh, 250); }
    budget.addEventListener("input", function () { shown.textContent = budget.value; later(); });
    ["lab-attack", "lab-seed", "lab-k"].forEach(function (id) {
      document.getElementById(id).addEventListener("change", later);
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); refresh(); });
    replay.play();
  }

  // -- a round: the timeline of picks ----------------------------------------------------------------------------
  function startRound(data, root) {
    var k = Number(root.dataset.k);
    var clean = data.clean, steps = clean.actions.length;
    var input = document.getElementById("policy-steps"), timeline = document.getElementById("timeline");
    var picks = [], cursor = 0;
    var replay = new Replay([{ canvas: document.getElementById("replay-clean"), episode: clean }], function (step) {
      stepLabel(step); cursor = Math.min(step, steps - 1); drawTimeline();
    });
    replay.speed = 0.25; // slow motion, so a person can react
    function parseInput() {
      var seen = {};
      picks = input.value.split(/[\s,;]+/).filter(Boolean).map(Number)
        .filter(function (s) { return Number.isInteger(s) && s >= 0 && s < 500 && !seen[s] && (seen[s] = true); })
        .sort(function (a, b) { return a - b; });
    }
    function writeInput() { input.value = picks.join(", "); drawTimeline(); }
    function toggle(step) {
      var at = picks.indexOf(step);
      if (at !== -1) picks.splice(at, 1);
      else if (picks.length < k) { picks.push(step); picks.sort(function (a, b) { return a - b; }); }
      writeInput();
    }
    function drawTimeline() {
      var ctx = timeline.getContext("2d"), w = timeline.width, h = timeline.height, bar = w / Math.max(steps, 1);
      ctx.clearRect(0, 0, w, h);
      ctx.fillStyle = colour("--muted");
      for (var i = 0; i < steps; i++) {
        var p = clean.preferences[i];
        ctx.fillRect(i * bar, h - p * (h - 20), Math.max(bar - 0.5, 0.5), p * (h - 20));
      }
      ctx.fillStyle = colour("--bad");
      picks.forEach(function (s) { ctx.fillRect(s * bar - 1, 0, Math.max(bar, 3), h); });
      ctx.fillStyle = colour("--accent");
      ctx.fillRect(cursor * bar - 1, 0, 2, h);
      ctx.fillStyle = colour("--ink"); ctx.font = "13px system-ui, sans-serif";
      ctx.fillText("step " + cursor + " · picked " + picks.length + " of " + k, 6, 14);
      timeline.setAttribute("aria-valuenow", String(cursor));
      timeline.setAttribute("aria-valuetext", "step " + cursor + (picks.indexOf(cursor) !== -1 ? ", picked" : ""));
    }
    timeline.addEventListener("click", function (event) {
      var box = timeline.getBoundingClientRect();
      cursor = Math.min(steps - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * steps)));
      toggle(cursor);
    });
    timeline.addEventListener("keydown", function (event) {
      var move = { ArrowLeft: -1, ArrowRight: 1, PageDown: -10, PageUp: 10 }[event.key];
      if (move !== undefined) { cursor = Math.min(steps - 1, Math.max(0, cursor + (event.shiftKey ? move * 10 : move))); }
      else if (event.key === "Home") cursor = 0;
      else if (event.key === "End") cursor = steps - 1;
      else if (event.key === "Enter" || event.key === " ") toggle(cursor);
      else return;
      event.preventDefault(); event.stopPropagation();
      replay.draw(cursor);
    });
    function attackNow() { if (picks.indexOf(replay.step) === -1 && replay.step < steps) toggle(replay.step); }
    document.getElementById("attack-now").addEventListener("click", attackNow);
    document.addEventListener("keydown", function (event) {
      var tag = event.target && event.target.tagName;
      if (event.key !== " " || tag === "INPUT" || tag === "BUTTON" || tag === "SELECT" || event.target === timeline) return;
      event.preventDefault(); attackNow();
    });
    document.getElementById("replay-play").addEventListener("click", function () { replay.play(); });
    document.getElementById("picks-clear").addEventListener("click", function () { picks = []; writeInput(); });
    input.addEventListener("input", function () { parseInput(); drawTimeline(); });
    parseInput(); drawTimeline();
  }

  function startResult(data) {
    var replay = new Replay([
      { canvas: document.getElementById("replay-player"), episode: data.player },
      { canvas: document.getElementById("replay-heuristic"), episode: data.heuristic },
    ], stepLabel);
    document.getElementById("replay-play").addEventListener("click", function () { replay.play(); });
    replay.play();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = readEpisodes();
    if (!data) return;
    var round = document.getElementById("policy-round");
    if (document.getElementById("lab-form") && data.attacked) startLab(data);
    else if (round) startRound(data, round);
    else if (data.player && data.heuristic) startResult(data);
  });
})();
