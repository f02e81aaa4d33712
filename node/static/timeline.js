// Order timeline page: show one flow (information, logistics, finance) or all.
// Loaded from /static (the page's CSP allows no inline script).
"use strict";

function showFlow(flow) {
  const rows = document.querySelectorAll("table.timeline tr.entry");
  let shown = 0;
  for (const row of rows) {
    const visible = flow === "all" || row.dataset.flow === flow;
    row.hidden = !visible;
    if (visible) shown += 1;
  }
  for (const button of document.querySelectorAll(".flow-filter button")) {
    button.setAttribute("aria-pressed", String(button.dataset.flow === flow));
  }
  const count = document.getElementById("shown-count");
  if (count) count.textContent = `${shown} of ${rows.length} entries shown`;
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll(".flow-filter button")) {
    button.addEventListener("click", () => showFlow(button.dataset.flow));
  }
  showFlow("all");
});
