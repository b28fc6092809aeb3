// The create-model form: the chosen vehicle's action space, and only the directions the main track is raced in.
(() => {
  "use strict";
  const form = document.querySelector("form[data-training-form]");
  if (!form) return;
  const fans = JSON.parse(document.getElementById("vehicle-fans").textContent);
  const directions = JSON.parse(document.getElementById("track-directions").textContent);
  const svg = form.querySelector("[data-fan-choice]");
  const caption = form.querySelector("[data-fan-caption]");
  const vehicle = form.elements.vehicle, track = form.elements.track;

  function showVehicle() {
    const fan = fans[vehicle.value];
    if (!fan) return;
    if (window.PitlaneFan) window.PitlaneFan(svg, fan);
    caption.textContent = fan.summary;
    // The racing-line example's target speeds are this car's (code_editor.js asks for it with this speed).
    const editorBox = form.querySelector("[data-code-editor]");
    if (editorBox) {
      editorBox.dataset.topSpeed = String(fan.max_speed);
      if (editorBox.refreshExample) editorBox.refreshExample();
    }
  }
  function limitDirections() {
    const allowed = directions[track.value] || "both";
    let checkedDisabled = false;
    for (const radio of form.querySelectorAll("input[name=direction]")) {
      radio.disabled = allowed !== "both" && radio.value !== allowed;
      if (radio.disabled && radio.checked) checkedDisabled = true;
    }
    if (checkedDisabled) form.querySelector(`input[name=direction][value=${allowed}]`).checked = true;
    // The main track is always trained on: it is not offered again among the extra tracks.
    for (const box of form.querySelectorAll("input[name=extra_tracks]")) {
      const row = box.closest("div");
      row.hidden = box.value === track.value;
      if (row.hidden) box.checked = false;
    }
  }
  vehicle.addEventListener("change", showVehicle);
  track.addEventListener("change", limitDirections);
  showVehicle();
  limitDirections();
})();
