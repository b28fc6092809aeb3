// Match page: replays both cars of a head-to-head match on one canvas over the track, car A (the higher seed)
// in orange and car B in blue, with play/pause, seek and speed controls. A car that has finished leaves the track.
(function () {
  const canvas = document.querySelector("[data-match-replay]");
  if (!canvas) return;
  const toggle = document.querySelector("[data-replay-toggle]");
  const seek = document.querySelector("[data-replay-seek]");
  const speedSelect = document.querySelector("[data-replay-speed]");
  const readout = document.querySelector("[data-replay-readout]");
  const ctx = canvas.getContext("2d");
  const COLOURS = ["#ff5a1f", "#38bdf8"];

  Promise.all([
    fetch(canvas.dataset.matchReplay).then((r) => r.json()),
    fetch(canvas.dataset.outline).then((r) => (r.ok ? r.json() : null)),
  ]).then(([data, outline]) => {
    const cars = (data.cars || []).filter((car) => car.trace && car.trace.x && car.trace.x.length > 1);
    if (cars.length !== 2) { readout.textContent = "No trace was recorded for this match."; return; }
    start(cars, outline);
  }).catch(() => { readout.textContent = "The replay could not be loaded."; });

  function monotonic(times) {
    // The race clock never restarts in a match, but keep playback safe if it ever does.
    const t = new Array(times.length); let offset = 0;
    for (let i = 0; i < times.length; i++) {
      if (i > 0 && times[i] + offset < t[i - 1]) offset = t[i - 1] - times[i] + 0.05;
      t[i] = times[i] + offset;
    }
    return t;
  }

  function start(cars, outline) {
    const times = cars.map((car) => monotonic(car.trace.t));
    const end = Math.max(...times.map((t) => t[t.length - 1]));
    const pts = outline ? [...outline.outer, ...outline.inner]
      : cars.flatMap((car) => car.trace.x.map((x, i) => [x, car.trace.y[i]]));
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
    const W = canvas.width, H = canvas.height, pad = 30;
    const scale = Math.min((W - 2 * pad) / (maxX - minX || 1), (H - 2 * pad) / (maxY - minY || 1));
    const ox = (W - (maxX - minX) * scale) / 2, oy = (H - (maxY - minY) * scale) / 2;
    const px = (x) => ox + (x - minX) * scale, py = (y) => H - oy - (y - minY) * scale;

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
      g.fillStyle = "#3f4148"; path(g, outline.outer, true); g.fill();
      g.fillStyle = "#3b5f34"; path(g, outline.inner, true); g.fill();
      g.strokeStyle = "#ffffff"; g.lineWidth = 2;
      path(g, outline.outer, true); g.stroke(); path(g, outline.inner, true); g.stroke();
      g.setLineDash([8, 8]); g.strokeStyle = "#e9c46a"; g.lineWidth = 1.5;
      path(g, outline.center, true); g.stroke(); g.setLineDash([]);
      const [a, b] = [outline.inner[0], outline.outer[0]];
      g.strokeStyle = "#ffffff"; g.lineWidth = 5; g.beginPath();
      g.moveTo(px(a[0]), py(a[1])); g.lineTo(px(b[0]), py(b[1])); g.stroke();
    }

    let clock = 0, playing = true, last = null;
    const indexAt = (t, time) => { let lo = 0, hi = t.length - 1; while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (t[mid] <= time) lo = mid; else hi = mid - 1; } return lo; };

    function drawCar(trace, i, colour) {
      const off = !["in_progress", "lap_complete", "prepare"].includes(trace.status[i]);
      const car = Math.max(10, 0.3 * scale);
      ctx.save(); ctx.translate(px(trace.x[i]), py(trace.y[i])); ctx.rotate(-trace.yaw[i] * Math.PI / 180);
      ctx.fillStyle = colour; ctx.strokeStyle = off ? "#dc2626" : "#111"; ctx.lineWidth = off ? 4 : 2;
      ctx.fillRect(-car / 2, -car / 4, car, car / 2); ctx.strokeRect(-car / 2, -car / 4, car, car / 2);
      ctx.fillStyle = "#111"; ctx.fillRect(car / 4, -car / 4, car / 4, car / 2);
      ctx.restore();
    }

    function draw() {
      ctx.drawImage(background, 0, 0);
      const parts = [];
      cars.forEach((car, c) => {
        const trace = car.trace, t = times[c], i = indexAt(t, clock), done = clock > t[t.length - 1];
        ctx.strokeStyle = COLOURS[c]; ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.globalAlpha = 0.6;
        for (let k = 0; k < i; k++) {
          if (Math.hypot(trace.x[k + 1] - trace.x[k], trace.y[k + 1] - trace.y[k]) > 0.5) continue; // a reset
          ctx.beginPath(); ctx.moveTo(px(trace.x[k]), py(trace.y[k])); ctx.lineTo(px(trace.x[k + 1]), py(trace.y[k + 1])); ctx.stroke();
        }
        ctx.globalAlpha = 1;
        if (!done) drawCar(trace, i, COLOURS[c]);  // a finished car has left the track
        parts.push(`#${car.seed} ${car.racer}: ${done ? "finished" : `${trace.speed[i].toFixed(2)} m/s, ${trace.status[i].replace(/_/g, " ")}`}`);
      });
      readout.textContent = `${clock.toFixed(1)} s / ${end.toFixed(1)} s · ${parts.join(" · ")}`;
      seek.value = String(Math.round(1000 * clock / end));
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
