// Submission page: follows the status until the run is final, then replays the recorded run on a canvas
// over the track (borders, centre line) with play/pause, seek and speed controls.
(function () {
  const FINAL = ["scored", "failed", "disqualified"];
  const status = document.querySelector("[data-status-url]");
  if (status && !FINAL.includes(status.dataset.status)) {
    const note = status.querySelector("[data-status-note]");
    const timer = setInterval(async () => {
      try {
        const response = await fetch(status.dataset.statusUrl, { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const data = await response.json();
        if (data.status !== status.dataset.status) { clearInterval(timer); window.location.reload(); return; }
        if (note && data.status === "queued" && data.queue_position) {
          note.textContent = `position ${data.queue_position} in the evaluation queue`;
        }
      } catch (error) { /* try again on the next tick */ }
    }, 2500);
  }

  const canvas = document.querySelector("[data-replay]");
  if (!canvas) return;
  const toggle = document.querySelector("[data-replay-toggle]");
  const seek = document.querySelector("[data-replay-seek]");
  const speedSelect = document.querySelector("[data-replay-speed]");
  const readout = document.querySelector("[data-replay-readout]");
  const ctx = canvas.getContext("2d");

  Promise.all([
    fetch(canvas.dataset.replay).then((r) => r.json()),
    fetch(canvas.dataset.outline).then((r) => (r.ok ? r.json() : null)),
  ]).then(([data, outline]) => {
    const trace = data.run && data.run.trace;
    if (!trace || !trace.x || trace.x.length < 2) { readout.textContent = "No trace was recorded for this run."; return; }
    start(trace, outline, data.run.boxes || []);
  }).catch(() => { readout.textContent = "The replay could not be loaded."; });

  function start(trace, outline, boxes) {
    const n = trace.x.length;
    // Race time can restart after a reset or lap: make it monotonic for playback.
    const t = new Array(n); let offset = 0;
    for (let i = 0; i < n; i++) {
      if (i > 0 && trace.t[i] + offset < t[i - 1]) offset = t[i - 1] - trace.t[i] + 0.05;
      t[i] = trace.t[i] + offset;
    }
    const end = t[n - 1];
    const pts = outline ? [...outline.outer, ...outline.inner] : trace.x.map((x, i) => [x, trace.y[i]]);
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
    const W = canvas.width, H = canvas.height, pad = 30;
    const scale = Math.min((W - 2 * pad) / (maxX - minX || 1), (H - 2 * pad) / (maxY - minY || 1));
    const ox = (W - (maxX - minX) * scale) / 2, oy = (H - (maxY - minY) * scale) / 2;
    const px = (x) => ox + (x - minX) * scale, py = (y) => H - oy - (y - minY) * scale;
    const maxSpeed = Math.max(4, ...trace.speed); // the trajectory picture's 0-4 m/s colour scale
    const colour = (v) => `hsl(${Math.round(230 - 230 * Math.min(1, v / maxSpeed))}, 85%, 55%)`;

    const background = document.createElement("canvas");
    background.width = W; background.height = H;
    drawTrack(background.getContext("2d"));

    function path(g, line, close) {
      g.beginPath();
      line.forEach((p, i) => (i ? g.lineTo(px(p[0]), py(p[1])) : g.moveTo(px(p[0]), py(p[1]))));
      if (close) g.closePath();
    }
    function drawTrack(g) {
      g.fillStyle = "#3b5f34"; g.fillRect(0, 0, W, H);
      if (!outline) return;
      g.fillStyle = "#3f4148";
      path(g, outline.outer, true); g.fill();
      g.fillStyle = "#3b5f34";
      path(g, outline.inner, true); g.fill();
      g.strokeStyle = "#ffffff"; g.lineWidth = 2;
      path(g, outline.outer, true); g.stroke();
      path(g, outline.inner, true); g.stroke();
      g.setLineDash([8, 8]); g.strokeStyle = "#e9c46a"; g.lineWidth = 1.5;
      path(g, outline.center, true); g.stroke(); g.setLineDash([]);
      const [a, b] = [outline.inner[0], outline.outer[0]];
      g.strokeStyle = "#ffffff"; g.lineWidth = 5; g.beginPath();
      g.moveTo(px(a[0]), py(a[1])); g.lineTo(px(b[0]), py(b[1])); g.stroke();
      // Obstacle boxes stay put for the whole run (the trajectory picture's orange).
      g.fillStyle = "#eb8c28"; g.strokeStyle = "#ffffff"; g.lineWidth = 1;
      for (const box of boxes) { path(g, box, true); g.fill(); g.stroke(); }
    }

    let clock = 0, playing = true, last = null;
    const indexAt = (time) => { let lo = 0, hi = n - 1; while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (t[mid] <= time) lo = mid; else hi = mid - 1; } return lo; };

    function draw() {
      const i = indexAt(clock);
      ctx.drawImage(background, 0, 0);
      ctx.lineWidth = 4; ctx.lineCap = "round";
      for (let k = 0; k < i; k++) {
        if (Math.hypot(trace.x[k + 1] - trace.x[k], trace.y[k + 1] - trace.y[k]) > 0.5) continue; // a reset: no line
        ctx.strokeStyle = colour(trace.speed[k]);
        ctx.beginPath(); ctx.moveTo(px(trace.x[k]), py(trace.y[k])); ctx.lineTo(px(trace.x[k + 1]), py(trace.y[k + 1])); ctx.stroke();
      }
      const off = !["in_progress", "lap_complete", "prepare"].includes(trace.status[i]);
      // Bot cars (head-to-bot races) where they were at this moment, drawn under the racer's car.
      const bots = (trace.bots && trace.bots[i]) || [];
      for (let k = 0; k + 2 < bots.length; k += 3) drawCar(bots[k], bots[k + 1], bots[k + 2], "#9ca3af");
      drawCar(trace.x[i], trace.y[i], trace.yaw[i], off ? "#dc2626" : "#ff5a1f");
      readout.textContent = `${clock.toFixed(1)} s / ${end.toFixed(1)} s · ${trace.speed[i].toFixed(2)} m/s · ${trace.status[i].replace(/_/g, " ")}`;
      seek.value = String(Math.round(1000 * clock / end));
    }

    function drawCar(x, y, yawDegrees, fill) {
      const car = Math.max(10, 0.3 * scale);
      ctx.save(); ctx.translate(px(x), py(y)); ctx.rotate(-yawDegrees * Math.PI / 180);
      ctx.fillStyle = fill; ctx.strokeStyle = "#111"; ctx.lineWidth = 2;
      ctx.fillRect(-car / 2, -car / 4, car, car / 2); ctx.strokeRect(-car / 2, -car / 4, car, car / 2);
      ctx.fillStyle = "#111"; ctx.fillRect(car / 4, -car / 4, car / 4, car / 2);
      ctx.restore();
    }

    function frame(now) {
      if (last !== null && playing) clock = Math.min(end, clock + (now - last) / 1000 * Number(speedSelect.value));
      last = now;
      draw();
      if (clock >= end && playing) { playing = false; toggle.textContent = "Replay"; }
      requestAnimationFrame(frame);
    }
    toggle.addEventListener("click", () => {
      if (clock >= end) clock = 0;
      playing = !playing;
      toggle.textContent = playing ? "Pause" : "Play";
    });
    seek.addEventListener("input", () => { clock = end * Number(seek.value) / 1000; });
    requestAnimationFrame(frame);
  }
})();
