// hooxrelay console: the overview's live table is not refreshed while the
// keyboard focus is in it (a refresh would drop the focus) or while the
// tab is hidden; each skipped refresh is counted in data-skipped.
document.addEventListener("htmx:beforeRequest", function (ev) {
  var live = document.getElementById("live");
  if (!live || ev.detail.elt !== live) return;
  if (document.hidden || live.contains(document.activeElement)) {
    ev.preventDefault();
    live.dataset.skipped = String(Number(live.dataset.skipped || 0) + 1);
  }
});
