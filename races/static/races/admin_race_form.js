// Admin race form: show only the settings section of the chosen race type. A disabled field is not sent, so the
// other types' settings stay empty (the server refuses them for this type).
document.addEventListener("DOMContentLoaded", () => {
  const select = document.querySelector("select[name=race_type]");
  if (!select) return;
  const sections = document.querySelectorAll("fieldset.race-type-settings");
  function update() {
    for (const section of sections) {
      const mine = section.classList.contains(`race-type-${select.value}`);
      section.hidden = !mine;
      for (const field of section.querySelectorAll("input, select, textarea")) field.disabled = !mine;
    }
  }
  select.addEventListener("change", update);
  update();
});
