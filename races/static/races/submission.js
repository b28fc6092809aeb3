// Submission page: follows the status until the run is final, then animates the replay on a canvas.
(function () {
  const status = document.querySelector("[data-status-url]");
  if (status && !["scored", "failed", "disqualified"].includes(status.dataset.status)) {
    const timer = setInterval(async () => {
      const response = await fetch(status.dataset.statusUrl);
      if (!response.ok) return;
      const data = await response.json();
      if (data.status !== status.dataset.status) { clearInterval(timer); window.location.reload(); }
    }, 2000);
  }
  const canvas = document.querySelector("[data-replay]");
  if (!canvas) return;
  (async () => {
    const data = await (await fetch(canvas.dataset.replay)).json();
    const trace = data.run && data.run.trace;
    if (!trace || !trace.x || !trace.x.length) return;
    const ctx = canvas.getContext("2d");
    const xs = trace.x, ys = trace.y, pad = 20;
    const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
    const scale = Math.min((canvas.width - 2 * pad) / (maxX - minX || 1), (canvas.height - 2 * pad) / (maxY - minY || 1));
    const px = (x) => pad + (x - minX) * scale, py = (y) => canvas.height - pad - (y - minY) * scale;
    const colour = (v) => `hsl(${Math.max(0, 220 - 55 * v)}, 80%, 45%)`;
    let start = null;
    function frame(now) {
      if (start === null) start = now;
      const t = (now - start) / 1000, end = trace.t[trace.t.length - 1];
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.fillStyle = "#f4f6f8"; ctx.fillRect(0, 0, canvas.width, canvas.height);
      let i = 0;
      for (; i < xs.length - 1 && trace.t[i + 1] <= t; i++) {
        ctx.strokeStyle = colour(trace.speed[i]); ctx.lineWidth = 3;
        ctx.beginPath(); ctx.moveTo(px(xs[i]), py(ys[i])); ctx.lineTo(px(xs[i + 1]), py(ys[i + 1])); ctx.stroke();
      }
      ctx.save(); ctx.translate(px(xs[i]), py(ys[i])); ctx.rotate(-trace.yaw[i] * Math.PI / 180);
      ctx.fillStyle = trace.status[i] === "pause" ? "#dc2626" : "#111827"; ctx.fillRect(-7, -4, 14, 8); ctx.restore();
      ctx.fillStyle = "#111827"; ctx.font = "13px system-ui";
      ctx.fillText(`${trace.t[i].toFixed(1)} s  ${trace.speed[i].toFixed(2)} m/s  ${trace.status[i]}`, 10, 16);
      if (t <= end + 1) requestAnimationFrame(frame); else { start = null; setTimeout(() => requestAnimationFrame(frame), 1500); }
    }
    requestAnimationFrame(frame);
  })();
})();
