// Right-align the cells of printed tables that hold a number (w7-tables.css), so that digits line up.
document.addEventListener("DOMContentLoaded", () => {
  const num = /^[-+\u2212]?[\d.,]+(e[-+]?\d+)?\s*%?$/i;
  document.querySelectorAll(".cell_output table td").forEach((td) => {
    if (num.test(td.textContent.trim())) td.classList.add("w7-num");
  });
});
