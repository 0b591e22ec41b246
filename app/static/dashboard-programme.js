// The programme page: a live preview of the Apple and Google cards that follows the design form (no server
// round trip), colour pickers beside the #RRGGBB fields, and the re-sync job's progress. No inline script:
// the page's CSP forbids it; colours are set through the CSSOM, which the CSP allows.
(function () {
  "use strict";
  var HEX = /^#[0-9A-Fa-f]{6}$/;
  var data = {};
  var node = document.getElementById("programme-data");
  if (node) data = JSON.parse(node.textContent);
  var preview = data.preview || {};
  var cards = [document.querySelector(".apple-card"), document.querySelector(".google-card")];

  function value(name) {
    var input = document.querySelector('[data-preview="' + name + '"]');
    return input ? input.value.trim() : "";
  }

  function paint() {
    var colours = { "--card-bg": value("background_color"), "--card-fg": value("foreground_color"),
                    "--card-label": value("label_color") };
    cards.forEach(function (card) {
      if (!card) return;
      Object.keys(colours).forEach(function (key) {
        if (HEX.test(colours[key])) card.style.setProperty(key, colours[key]);
      });
    });
    var logoText = value("logo_text") || value("name") || preview.name || "";
    document.querySelectorAll('[data-text="logo_text"]').forEach(function (el) { el.textContent = logoText; });
    var name = value("name") || preview.name || "";
    document.querySelectorAll('[data-text="name"]').forEach(function (el) { el.textContent = name; });
  }

  // Colour pickers mirror the text fields both ways.
  document.querySelectorAll("input[data-sync]").forEach(function (picker) {
    var text = document.getElementById(picker.getAttribute("data-sync"));
    if (!text) return;
    if (HEX.test(text.value.trim())) picker.value = text.value.trim().toLowerCase();
    picker.addEventListener("input", function () { text.value = picker.value.toUpperCase(); paint(); });
    text.addEventListener("input", function () {
      if (HEX.test(text.value.trim())) picker.value = text.value.trim().toLowerCase();
    });
  });
  document.querySelectorAll("[data-preview]").forEach(function (input) { input.addEventListener("input", paint); });

  // A chosen PNG shows in the preview at once, as a data: URL (the CSP allows data: images, not blob:).
  document.querySelectorAll("input[data-preview-image]").forEach(function (input) {
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file || file.type !== "image/png" || file.size > 2 * 1024 * 1024) return;
      var reader = new FileReader();
      reader.onload = function () {
        document.querySelectorAll('img[data-image="' + input.getAttribute("data-preview-image") + '"]')
          .forEach(function (img) { img.src = reader.result; });
      };
      reader.readAsDataURL(file);
    });
  });
  paint();

  // The re-sync job: poll its progress until it is done or failed.
  var panel = document.getElementById("job");
  if (!panel) return;
  var bar = document.getElementById("job-progress");
  var status = document.getElementById("job-status");
  function show(job) {
    bar.max = job.total || 1;
    bar.value = job.total ? job.done : (job.state === "done" ? 1 : 0);
    panel.setAttribute("data-state", job.state);
    if (job.state === "done") status.textContent = "Done: " + job.done + " of " + job.total + " cards were sent their new pass.";
    else if (job.state === "failed") status.textContent = "The update stopped after " + job.done + " of " + job.total + " cards: " + (job.error || "unknown error") + ". Save again to retry.";
    else if (job.state === "running") status.textContent = job.done + " of " + job.total + " cards updated…";
    else status.textContent = "Waiting to start (" + job.total + " cards)…";
  }
  function poll() {
    fetch(panel.getAttribute("data-url"), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
      .then(function (job) {
        show(job);
        if (job.state === "queued" || job.state === "running") window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  var state = panel.getAttribute("data-state");
  if (state === "queued" || state === "running") poll();
})();
