// Live leaderboard: re-renders the table body from the JSON endpoint every few seconds.
(function () {
  const table = document.querySelector("[data-leaderboard]");
  if (!table) return;
  const body = table.querySelector("tbody");
  const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; };
  async function refresh() {
    try {
      const response = await fetch(table.dataset.leaderboard, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      body.replaceChildren();
      if (!data.rows.length) {
        const row = document.createElement("tr"); const td = cell("No qualifying runs yet.", "muted"); td.colSpan = 10;
        row.className = "empty"; row.append(td); body.append(row); return;
      }
      for (const r of data.rows) {
        const row = document.createElement("tr");
        const link = document.createElement("a"); link.href = `/submissions/${r.submission_id}/`; link.textContent = "view";
        const runCell = document.createElement("td"); runCell.append(link);
        row.append(cell(r.rank), cell(r.racer, "alias"), cell(r.time), cell(`+${r.gap_ms} ms`), cell(r.off_track_count),
                   cell(r.reset_count), cell(r.crash_count), cell(r.laps), cell(r.submission_count), runCell);
        body.append(row);
      }
    } catch (error) { /* offline for a moment: try again next tick */ }
  }
  setInterval(refresh, 4000);
})();
