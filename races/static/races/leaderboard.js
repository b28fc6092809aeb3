// Race page: keeps the leaderboard and "your submissions" current by polling the race's JSON endpoint.
(function () {
  const table = document.querySelector("[data-leaderboard]");
  if (!table) return;
  const body = table.querySelector("tbody");
  const mine = document.querySelector("[data-mine]");
  const columns = table.querySelectorAll("thead th").length;
  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  };
  const link = (href, text) => { const a = el("a", text); a.href = href; return a; };
  let known = new Map([...body.querySelectorAll("tr[data-submission]")].map((tr) => [tr.dataset.submission, true]));

  function renderBoard(data) {
    const ranked = document.querySelector("[data-ranked]");
    if (ranked && typeof data.ranked === "number") {
      ranked.textContent = `${data.ranked} racer${data.ranked === 1 ? "" : "s"} ranked`;
    }
    body.replaceChildren();
    if (!data.rows.length) {
      const tr = el("tr", null, "empty"); const td = el("td", "No qualifying runs yet.", "muted");
      td.colSpan = columns; tr.append(td); body.append(tr); return;
    }
    const seen = new Map();
    for (const r of data.rows) {
      const classes = [`p${r.rank}`];
      if (data.me && r.racer === data.me) classes.push("mine");
      if (!known.has(String(r.submission_id))) classes.push("fresh");
      const tr = el("tr", null, classes.join(" "));
      tr.dataset.submission = r.submission_id;
      const run = el("td"); run.append(link(r.url, "watch"));
      const racer = el("td", null, "alias"); racer.append(link(r.racer_url, r.racer));
      tr.append(el("td", r.rank, "rank"), racer, el("td", r.time, "num time"),
                el("td", r.gap || "—", "num gap"));
      if (r.ideal_gap_ms !== null && r.ideal_gap_ms !== undefined) tr.append(el("td", r.ideal_gap, "num gap"));
      tr.append(el("td", r.off_track_count, "num"), el("td", r.reset_count, "num"),
                el("td", r.crash_count, "num"), el("td", r.laps, "num"), el("td", r.submission_count, "num"), run);
      body.append(tr);
      seen.set(String(r.submission_id), true);
    }
    known = seen;
  }

  function renderMine(rows, zone) {
    if (!mine || !rows || !rows.length) return;
    const tbody = mine.querySelector("tbody");
    if (!tbody) return; // first submission: the page shows the table after a reload
    tbody.replaceChildren();
    for (const s of rows) {
      const tr = el("tr");
      const num = el("td"); num.append(link(s.url, s.sequence));
      const status = el("td"); status.append(el("span", s.badge.label, `badge ${s.badge.css}`));
      if (s.queue_position) status.append(" ", el("span", `#${s.queue_position} in queue`, "muted"));
      const score = s.score ? el("td", s.score, "num") : el("td", "—", "num muted"); // the badge says why
      const when = el("time", s.submitted_at);
      Object.assign(when.dataset, { local: "replace", parts: "", zone: zone || "UTC" });
      when.dateTime = s.submitted_at_iso;
      const submitted = el("td"); submitted.append(when);
      tr.append(num, el("td", s.model), status, score, submitted);
      tbody.append(tr);
    }
    if (window.pitlaneLocalTimes) window.pitlaneLocalTimes(tbody);
  }

  async function refresh() {
    if (document.hidden) return;
    try {
      const response = await fetch(table.dataset.leaderboard, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      renderBoard(data);
      renderMine(data.mine, data.time_zone);
    } catch (error) { /* offline for a moment: try again on the next tick */ }
  }

  const cooldown = document.querySelector("[data-cooldown]");
  if (cooldown) {
    let left = Number(cooldown.dataset.cooldown);
    const tick = setInterval(() => {
      left -= 1;
      cooldown.textContent = left > 0 ? `${left} s` : "ready";
      if (left <= 0) clearInterval(tick);
    }, 1000);
  }
  if (table.dataset.phase !== "closed") setInterval(refresh, 5000);
})();
