// Schedule and season pages: a season picked in a row's menu is saved at once; destructive actions are confirmed.
(function () {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
  }
  // The scheduling form shows the chosen track's picture under the track menu.
  const previews = document.getElementById("track-previews");
  const track = document.querySelector("select[name=track]");
  if (previews && track) {
    const urls = JSON.parse(previews.textContent);
    const picture = document.createElement("img");
    picture.className = "track-picture form-track-picture";
    picture.alt = "The chosen track";
    picture.width = 480;
    picture.height = 320;
    track.closest("fieldset").append(picture);
    const show = () => { picture.src = urls[track.value] || ""; picture.hidden = !urls[track.value]; };
    track.addEventListener("change", show);
    show();
  }
})();
