// hooxrelay console: a live part of a page (data-live: the overview's
// table, the running replays) is not refreshed while the keyboard focus is
// in it (a refresh would drop the focus) or while the tab is hidden; each
// skipped refresh is counted in its data-skipped.
document.addEventListener("htmx:beforeRequest", function (ev) {
  var live = ev.detail.elt;
  if (!live || !live.hasAttribute || !live.hasAttribute("data-live")) return;
  if (document.hidden || live.contains(document.activeElement)) {
    ev.preventDefault();
    live.dataset.skipped = String(Number(live.dataset.skipped || 0) + 1);
  }
});
