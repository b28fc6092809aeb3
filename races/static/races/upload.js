// Model upload: refuse files over the server's limit at once, and show progress while a large archive uploads.
(function () {
  const form = document.querySelector("form[data-upload-limit]");
  if (!form) return;
  const input = form.querySelector("input[type=file]");
  const button = form.querySelector("button[type=submit]");
  const limitBytes = Number(form.dataset.uploadLimit) * 1024 * 1024;
  const progress = document.createElement("progress");
  progress.max = 100; progress.value = 0; progress.hidden = true; progress.className = "upload-progress";
  const note = document.createElement("p");
  note.className = "help"; note.setAttribute("aria-live", "polite");
  button.after(progress, note);

  form.addEventListener("submit", (event) => {
    const file = input.files[0];
    if (file && file.size > limitBytes) {
      event.preventDefault();
      note.textContent = `This file is ${(file.size / 2 ** 20).toFixed(1)} MB; uploads are limited to ${form.dataset.uploadLimit} MB.`;
      return;
    }
    if (!file || !window.XMLHttpRequest) return; // the plain form post still works
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.href);
    request.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      progress.value = Math.round((100 * e.loaded) / e.total);
      note.textContent = progress.value < 100 ? `Uploading… ${progress.value} %` : "Validating the archive…";
    });
    request.addEventListener("load", () => {
      // Success was redirected to the model page (with its one-time message); a refused archive comes back as
      // this form with its errors. Either way show that answer as the page, at its address.
      document.open(); document.write(request.responseText); document.close();
      if (request.responseURL) window.history.replaceState(null, "", request.responseURL);
    });
    request.addEventListener("error", () => { note.textContent = "The upload failed: check your connection and try again."; button.disabled = false; });
    button.disabled = true; progress.hidden = false;
    request.send(new FormData(form));
  });
})();
