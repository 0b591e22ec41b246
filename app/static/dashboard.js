// Draws the overview's charts from the JSON the page embeds (no inline script: the CSP forbids it).
(function () {
  "use strict";
  var node = document.getElementById("chart-data");
  if (!node || typeof Chart === "undefined") return;
  var data = JSON.parse(node.textContent);
  var days = document.getElementById("chart-days");
  if (days) {
    new Chart(days, {
      data: {
        labels: data.days,
        datasets: [
          { type: "bar", label: "Purchases", data: data.purchases, backgroundColor: "#2f6fde", yAxisID: "y" },
          { type: "line", label: "New members", data: data.members, borderColor: "#e0822b", backgroundColor: "#e0822b", yAxisID: "y" }
        ]
      },
      options: { responsive: true, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  var rfm = document.getElementById("chart-rfm");
  if (rfm) {
    new Chart(rfm, {
      type: "bar",
      data: { labels: data.rfm_labels, datasets: [{ label: "Customers", data: data.rfm_counts, backgroundColor: "#4a9d6f" }] },
      options: { indexAxis: "y", responsive: true, animation: false, plugins: { legend: { display: false } },
                 scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
})();
