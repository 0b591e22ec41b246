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

  // WCAG 2.x contrast of the text and label colours with the background, beside their fields, as they are
  // typed (the same formula and words as the server's, app/contrast.py and design_contrast).
  function channel(v) { var c = v / 255; return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }
  function luminance(hex) {
    return 0.2126 * channel(parseInt(hex.substr(1, 2), 16)) + 0.7152 * channel(parseInt(hex.substr(3, 2), 16)) +
           0.0722 * channel(parseInt(hex.substr(5, 2), 16));
  }
  function ratio(a, b) {
    var x = luminance(a), y = luminance(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }
  var WHAT = { foreground_color: "Text", label_color: "Labels" };
  var WORDS = { ok: "passes WCAG AA (4.5:1)", low: "below the 4.5:1 of WCAG AA: hard to read, in sunlight above all",
                unreadable: "far too low: it cannot be read" };
  function checkContrast() {
    var background = value("background_color");
    document.querySelectorAll("[data-contrast]").forEach(function (note) {
      var name = note.getAttribute("data-contrast"), colour = value(name);
      if (!HEX.test(colour) || !HEX.test(background)) { note.textContent = ""; note.setAttribute("data-level", ""); return; }
      var r = ratio(colour, background), level = r >= 4.5 ? "ok" : r >= 3 ? "low" : "unreadable";
      var shown = (Math.floor(r * 100) / 100).toFixed(2) + ":1";
      note.setAttribute("data-level", level);
      note.textContent = WHAT[name] + " on the background: " + shown + ", " + WORDS[level] + ".";
    });
  }
  document.querySelectorAll('[data-preview$="_color"]').forEach(function (input) {
    input.addEventListener("input", checkContrast);
  });
  document.querySelectorAll("input[data-sync]").forEach(function (picker) { picker.addEventListener("input", checkContrast); });
  checkContrast();

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
