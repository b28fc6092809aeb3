// The garage: action-space pictures (a fan of steering angles coloured by speed) and the vehicle form's live
// action table. The table's rules stay on the server (sim.world.vehicle): the four console inputs are sent to
// garage/action-table.json, which answers with the generated table or the refusal to show.
(() => {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const MAX_SPEED = 4;  // m/s (SPEC §3): every picture uses the same scale so vehicles compare at a glance
  const MAX_ANGLE = 30;
  const INNER = 22, OUTER = 108;  // radius of a 0 m/s and a 4 m/s ray
  const PALETTE = [[37, 99, 235], [22, 163, 74], [245, 158, 11], [220, 38, 38]];  // slow blue .. fast red

  const radius = (speed) => INNER + (OUTER - INNER) * Math.min(speed, MAX_SPEED) / MAX_SPEED;
  const point = (angle, r) => {  // + = left; straight ahead is up
    const a = angle * Math.PI / 180;
    return [-r * Math.sin(a), -r * Math.cos(a)];
  };
  function colour(speed) {
    const t = Math.max(0, Math.min(1, speed / MAX_SPEED)) * (PALETTE.length - 1);
    const i = Math.min(Math.floor(t), PALETTE.length - 2), f = t - i;
    const c = PALETTE[i].map((v, k) => Math.round(v + (PALETTE[i + 1][k] - v) * f));
    return `rgb(${c.join(",")})`;
  }
  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }
  function arc(r, from, to) {
    const [x1, y1] = point(from, r), [x2, y2] = point(to, r);
    return `M${x1.toFixed(2)},${y1.toFixed(2)} A${r},${r} 0 0 ${from > to ? 1 : 0} ${x2.toFixed(2)},${y2.toFixed(2)}`;
  }

  function band(right, left, inner, outer) {  // the annular sector between two angles and two radii
    const p = (angle, r) => point(angle, r).map((n) => n.toFixed(2)).join(",");
    return `M${p(right, inner)} L${p(right, outer)} A${outer},${outer} 0 0 0 ${p(left, outer)} ` +
      `L${p(left, inner)} A${inner},${inner} 0 0 1 ${p(right, inner)} Z`;
  }

  function drawFan(svg, spec) {
    svg.replaceChildren();
    const grid = el("g", {class: "fan-grid"}, svg);
    for (const speed of [1, 2, 3, 4]) {
      el("path", {d: arc(radius(speed), MAX_ANGLE + 8, -MAX_ANGLE - 8)}, grid);
      const [x, y] = point(-MAX_ANGLE - 10, radius(speed));
      el("text", {x: x + 2, y: y + 3}, grid).textContent = `${speed} m/s`;
    }
    for (const angle of [-MAX_ANGLE, 0, MAX_ANGLE]) {
      const [x, y] = point(angle, OUTER + 4);
      el("line", {x1: 0, y1: 0, x2: x.toFixed(2), y2: y.toFixed(2)}, grid);
    }
    if (spec.type === "continuous" && spec.ranges) {
      const {steering_angle: s, speed: v} = spec.ranges;
      const bands = 12;
      for (let b = 0; b < bands; b++) {
        const lo = v.low + (v.high - v.low) * b / bands, hi = v.low + (v.high - v.low) * (b + 1) / bands;
        el("path", {d: band(s.low, s.high, radius(lo), radius(hi)), fill: colour((lo + hi) / 2),
          stroke: colour((lo + hi) / 2), "stroke-width": 0.6}, svg);  // the stroke hides seams between bands
      }
    } else {
      // Fastest first, so a slower ray at the same angle is drawn over the longer one and stays visible.
      const actions = (spec.actions || []).map((a, i) => ({...a, i})).filter(
        (a) => Number.isFinite(a.steering_angle) && Number.isFinite(a.speed));
      actions.sort((a, b) => b.speed - a.speed);
      for (const a of actions) {
        const [x, y] = point(Math.max(-MAX_ANGLE, Math.min(MAX_ANGLE, a.steering_angle)), radius(a.speed));
        const ray = el("g", {class: "fan-ray", "data-index": a.i}, svg);
        el("line", {x1: 0, y1: 0, x2: x.toFixed(2), y2: y.toFixed(2), stroke: colour(a.speed)}, ray);
        el("circle", {cx: x.toFixed(2), cy: y.toFixed(2), r: 3.4, fill: colour(a.speed)}, ray);
        el("title", {}, ray).textContent = `#${a.i}: ${a.steering_angle}°, ${a.speed} m/s`;
      }
    }
    el("rect", {x: -5, y: -4, width: 10, height: 14, rx: 2, class: "fan-car"}, svg);
  }

  window.PitlaneFan = drawFan;  // the create-model page draws the chosen vehicle with it
  for (const svg of document.querySelectorAll("svg[data-fan]")) {
    try { drawFan(svg, JSON.parse(svg.dataset.fan)); } catch (error) { console.error(error); }
  }

  // --- the vehicle form ---------------------------------------------------------------------------------------
  const form = document.querySelector("form[data-vehicle-form]");
  if (!form) return;
  const svg = form.querySelector("svg[data-fan-live]");
  const summary = form.querySelector("[data-fan-summary]");
  const rows = form.querySelector("[data-action-rows]");
  const note = form.querySelector("[data-table-note]");
  const noteText = note.textContent;
  const regenerate = form.querySelector("[data-regenerate]");
  regenerate.hidden = true;  // the table follows the inputs live
  const inputs = ["max_steering_angle", "steering_granularity", "max_speed", "speed_granularity"]
    .map((name) => form.elements[name]);
  const ranges = ["steering_low", "steering_high", "speed_low", "speed_high"].map((name) => form.elements[name]);
  const spaceType = () => (form.querySelector("input[name=action_space_type]:checked") || {}).value || "discrete";

  function tableActions() {
    return [...rows.querySelectorAll("tr")].map((tr) => {
      const [steering, speed] = tr.querySelectorAll("input");
      return {steering_angle: parseFloat(steering.value), speed: parseFloat(speed.value)};
    });
  }
  function redraw() {
    const type = spaceType();
    for (const section of form.querySelectorAll("[data-space]")) section.hidden = section.dataset.space !== type;
    if (type === "continuous") {
      const [sl, sh, vl, vh] = ranges.map((input) => parseFloat(input.value));
      const ok = [sl, sh, vl, vh].every(Number.isFinite) && sl < sh && vl < vh;
      drawFan(svg, {type, ranges: ok ? {steering_angle: {low: sl, high: sh}, speed: {low: vl, high: vh}} : null});
      summary.textContent = ok ? `Continuous: steering ${sl}° to ${sh}°, speed ${vl} to ${vh} m/s.`
        : "Give each range a lower and a higher end.";
    } else {
      const actions = tableActions();
      drawFan(svg, {type, actions});
      const speeds = actions.map((a) => a.speed).filter(Number.isFinite);
      summary.textContent = `${actions.length} actions` +
        (speeds.length ? `, ${Math.min(...speeds)} to ${Math.max(...speeds)} m/s.` : ".");
    }
  }
  function setRows(actions) {
    rows.replaceChildren(...actions.map((a, i) => {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td class="num">${i}</td><td class="num"><input type="number" step="any" name="action_steering"
        aria-label="Steering of action ${i}"></td><td class="num"><input type="number" step="any" name="action_speed"
        aria-label="Speed of action ${i}"></td>`;
      const [steering, speed] = tr.querySelectorAll("input");
      steering.value = a.steering_angle;
      speed.value = a.speed;
      return tr;
    }));
  }
  let pending = null, sequence = 0;
  function fetchTable() {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      const mine = ++sequence;
      const query = new URLSearchParams(inputs.map((input) => [input.name, input.value]));
      try {
        const response = await fetch(`${form.dataset.actionTableUrl}?${query}`, {headers: {Accept: "application/json"}});
        const body = await response.json();
        if (mine !== sequence) return;  // a newer request is on its way
        if (response.ok) {
          setRows(body.actions);
          note.textContent = noteText;
          note.classList.remove("field-errors");
        } else {
          note.textContent = body.detail;
          note.classList.add("field-errors");
        }
      } catch (error) {
        note.textContent = "Could not update the table (offline?). Saving still checks it.";
      }
      redraw();
    }, 200);
  }
  for (const input of inputs) input.addEventListener("input", fetchTable);
  for (const input of inputs) input.addEventListener("change", fetchTable);
  form.addEventListener("input", (event) => {
    if (!inputs.includes(event.target)) redraw();
  });
  form.addEventListener("change", redraw);
  rows.addEventListener("mouseover", (event) => {
    const tr = event.target.closest("tr");
    for (const ray of svg.querySelectorAll(".fan-ray")) {
      ray.classList.toggle("active", tr !== null && ray.dataset.index === String(tr.rowIndex - 1));
    }
  });
  rows.addEventListener("mouseleave", () => svg.querySelectorAll(".fan-ray.active").forEach((r) => r.classList.remove("active")));
  redraw();
})();
