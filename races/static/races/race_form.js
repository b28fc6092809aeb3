// Race settings form: show only the settings of the chosen race type. A disabled fieldset is not sent, so the
// other types' settings stay empty (the server refuses them for this type).
(function () {
  const select = document.querySelector("select[name=race_type]");
  if (!select) return;
  const groups = document.querySelectorAll("fieldset[data-race-type]");
  function update() {
    for (const group of groups) {
      const mine = group.dataset.raceType === select.value;
      group.hidden = !mine;
      group.disabled = !mine;
    }
  }
  select.addEventListener("change", update);
  update();
})();
