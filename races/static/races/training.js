// Training page: polls the job's progress JSON every 2 s while it is active and redraws the status, counters, the
// reward graph (Chart.js, vendored: average reward, training progress %, evaluation progress %), the latest
// evaluation paths and the log tail.
(function () {
  const box = document.querySelector("[data-training-progress]");
  if (!box) return;
  const ACTIVE = ["queued", "starting", "training", "stopping"];
  const POLL_MS = 2000;
  const $ = (selector) => document.querySelector(selector);
  const canvas = $("[data-reward-chart]");
  let chart = null;

  function drawChart(curve) {
    if (!canvas || typeof Chart === "undefined") return;
    const labels = curve.map((row) => row.iteration);
    const series = [
      curve.map((row) => row.mean_reward),
      curve.map((row) => row.mean_progress),
      curve.map((row) => row.evaluation_mean_progress),
    ];
    if (chart) {
      chart.data.labels = labels;
      series.forEach((values, index) => { chart.data.datasets[index].data = values; });
      chart.update("none");
      return;
    }
    chart = new Chart(canvas, {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: "Average reward", data: series[0], yAxisID: "reward", borderColor: "#2563eb", backgroundColor: "#2563eb" },
          { label: "Average percentage completion (training)", data: series[1], yAxisID: "progress", borderColor: "#ea580c", backgroundColor: "#ea580c" },
          { label: "Average percentage completion (evaluating)", data: series[2], yAxisID: "progress", borderColor: "#16a34a", backgroundColor: "#16a34a" },
        ],
      },
      options: {
        animation: false, maintainAspectRatio: false, spanGaps: true,
        // A point stays visible on its own: the first iterations are dots, not a line yet.
        elements: { point: { radius: (context) => (context.chart.data.labels.length < 3 ? 5 : 2) }, line: { borderWidth: 2 } },
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: { display: true, text: "Iteration" } },
          reward: { position: "left", title: { display: true, text: "Reward" } },
          progress: { position: "right", min: 0, max: 100, title: { display: true, text: "Progress (%)" }, grid: { drawOnChartArea: false } },
        },
      },
    });
  }

  function minutes(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function render(data) {
    box.dataset.status = data.status;
    const badge = box.querySelector("[data-status-badge]");
    badge.textContent = data.status_label;
    badge.className = `badge training-${data.status}`;
    const note = box.querySelector("[data-status-note]");
    if (data.status === "queued") {
      note.textContent = data.queue_position ? `position ${data.queue_position} in the training queue` : "waiting for a training worker";
    } else if (data.status === "stopping") {
      note.textContent = "stopping: saving the model trained so far";
    } else if (ACTIVE.includes(data.status)) {
      const ep = data.iteration_episodes_planned ? ` (${data.iteration_episodes_finished || 0}/${data.iteration_episodes_planned} episodes)` : "";
      const update = data.update && ["warm start", "updating"].includes(data.phase) ? ` ${data.update}` : "";
      note.textContent = `${data.phase || data.status}${update}${ep}`;
    } else {
      note.textContent = data.stopped_by ? `ended: ${data.stopped_by.replace("_", " ")}` : "";
    }
    const active = ACTIVE.includes(data.status);
    document.querySelectorAll("[data-when-active]").forEach((element) => {
      element.hidden = !active || (element.tagName === "FORM" && data.stop_requested);
    });
    $("[data-counter=iteration]").textContent = data.iteration;
    // The totals count committed iterations; the one under way adds what it has collected so far.
    $("[data-counter=episodes]").textContent = data.episodes + (data.iteration_episodes_finished || 0);
    $("[data-counter=env_steps]").textContent = (data.env_steps + (data.iteration_env_steps || 0)).toLocaleString();
    $("[data-counter=trained]").textContent = minutes(data.trained_seconds);
    $("[data-counter=left]").textContent = active ? minutes(data.seconds_left) : "—";
    const failure = $("[data-failure]");
    failure.hidden = data.status !== "failed";
    failure.textContent = data.failure_reason;
    const noteBox = $("[data-note]");
    noteBox.hidden = !data.note;
    noteBox.textContent = data.note;
    if (data.model_url) {
      $("[data-result]").hidden = false;
      $("[data-model-link]").href = data.model_url;
    }
    const picture = $("[data-trajectories]");
    if (data.trajectories_url && !picture.src.endsWith(data.trajectories_url)) {
      picture.src = data.trajectories_url;
      picture.hidden = false;
      $("[data-no-trajectories]").hidden = true;
    }
    const camera = $("[data-camera]");
    if (camera && data.camera_url && !camera.src.endsWith(data.camera_url)) {
      camera.src = data.camera_url;
      camera.hidden = false;
      const which = data.camera_iteration === 0 ? "The starting model (iteration 0)" : `Iteration ${data.camera_iteration}`;
      $("[data-camera-caption]").textContent = `${which}: the first evaluation episode through the car's camera, at driving speed, 7.5 frames a second — what the network decides from.`;
    }
    $("[data-log-tail]").textContent = data.log_tail || "—";
    drawChart(data.curve);
    return active;
  }

  async function poll() {
    try {
      const response = await fetch(box.dataset.trainingProgress, { headers: { Accept: "application/json" } });
      if (response.ok && !render(await response.json())) return; // final: nothing changes any more
    } catch (error) { /* try again on the next tick */ }
    setTimeout(poll, POLL_MS);
  }

  const initial = JSON.parse(document.getElementById("training-progress").textContent);
  window.addEventListener("load", () => {
    drawChart(initial.curve);
    if (ACTIVE.includes(initial.status)) setTimeout(poll, POLL_MS);
  });
})();
