// Organiser page: copy the invite link, and confirm destructive actions before posting them.
(function () {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
  }
  const button = document.querySelector("[data-copy]");
  const source = document.querySelector("[data-copy-source]");
  if (button && source) {
    button.addEventListener("click", async () => {
      source.select();
      try { await navigator.clipboard.writeText(source.value); } catch (error) { document.execCommand("copy"); }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
})();
