// Small progressive enhancements; every page works without JavaScript.

// Times: the server writes the league's time with its zone ({% when %}); where the browser knows the viewer's zone,
// show that instead (or beside it, data-local="both"), the league's time kept in the tooltip.
window.pitlaneLocalTimes = (root) => {
  for (const el of (root || document).querySelectorAll("time[data-local]")) {
    const at = new Date(el.dateTime);
    if (Number.isNaN(at.getTime())) continue;
    const parts = (el.dataset.parts || "").split(" ");
    const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (parts.includes("year")) options.year = "numeric";
    if (parts.includes("weekday")) options.weekday = "short";
    if (parts.includes("seconds")) options.second = "2-digit";
    let local, league;
    try {
      local = new Intl.DateTimeFormat(undefined, { ...options, timeZoneName: "short" }).format(at);
      league = new Intl.DateTimeFormat(undefined, { ...options, timeZoneName: "short", timeZone: el.dataset.zone }).format(at);
    } catch { continue; } // an old browser, or a zone it does not know: the league's time stays
    const leagueText = el.dataset.leagueText || el.textContent;
    el.dataset.leagueText = leagueText;
    if (local === league) continue; // the viewer is in the league's zone: nothing to add
    el.title = `${leagueText} (league time)`;
    el.textContent = el.dataset.local === "both" ? `${leagueText} (${local} your time)` : local;
  }
};

document.addEventListener("DOMContentLoaded", () => {
  window.pitlaneLocalTimes(document);
  const toggle = document.querySelector("[data-nav-toggle]");
  const nav = document.getElementById("site-nav");
  if (toggle && nav) {
    toggle.addEventListener("click", () => {
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const field = document.querySelector(button.dataset.copy);
      if (!field) return;
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
      } catch {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
    });
  });
  document.querySelectorAll("[data-select-on-focus]").forEach((field) => {
    field.addEventListener("focus", () => field.select());
  });
});
