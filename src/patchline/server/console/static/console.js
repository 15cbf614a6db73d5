// Draws every chart on the page from the JSON next to its canvas, and sends the CSRF
// token with every htmx request. Loaded after Chart.js and htmx (both vendored).
(function () {
  "use strict";
  var palette = ["#1f5fbf", "#e07b00", "#1a7f37", "#b3261e", "#7b4fbf", "#008b8b", "#8a6d00", "#c2185b"];
  var named = { "booted-healthy": "#1a7f37", "installed": "#1f5fbf", "failed": "#b3261e",
                "rolled-back": "#e07b00", "server": "#1f5fbf", "mirror": "#7b4fbf", "card": "#008b8b" };

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    spec.datasets.forEach(function (d, i) {
      d.backgroundColor = named[d.label] || palette[i % palette.length];
    });
    var chart = new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
        scales: { x: { stacked: !!spec.stacked }, y: { stacked: !!spec.stacked, beginAtZero: true } },
        plugins: { legend: { position: "bottom" } }
      }
    });
    canvas.dataset.drawn = String(chart.data.datasets.length);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
  // A region htmx refreshed brings new canvases: draw them.
  document.addEventListener("htmx:afterSettle", function (event) {
    var root = event.detail.elt && event.detail.elt.isConnected ? event.detail.elt : document;
    root.querySelectorAll("canvas[data-chart]:not([data-drawn])").forEach(draw);
    document.querySelectorAll("canvas[data-chart]:not([data-drawn])").forEach(draw);
  });
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
  });
})();
