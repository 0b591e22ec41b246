// The "New programme" wizard: one step at a time (Back / Next; the whole form shows without script), the slug
// suggested from the name, a template filling the rules, tiers and design, and the preview's balance and tier
// (dashboard-programme.js paints the colours and names). No inline script: the CSP forbids it.
(function () {
  "use strict";
  var form = document.getElementById("wizard");
  if (!form) return;
  var data = JSON.parse(document.getElementById("wizard-data").textContent);
  var steps = Array.prototype.slice.call(form.querySelectorAll(".wizard-step"));
  var links = document.querySelectorAll("[data-step-link]");
  var back = document.getElementById("wizard-back");
  var next = document.getElementById("wizard-next");
  var create = document.getElementById("wizard-create");
  var current = Math.max(0, steps.findIndex(function (s) { return s.dataset.step === form.dataset.firstStep; }));

  function show(index) {
    current = index;
    steps.forEach(function (step, i) { step.hidden = i !== index; });
    links.forEach(function (link, i) {
      if (i === index) link.setAttribute("aria-current", "step"); else link.removeAttribute("aria-current");
    });
    back.hidden = index === 0;
    next.hidden = index === steps.length - 1;
    create.hidden = index !== steps.length - 1;
  }

  function stepValid(step) {
    var fields = step.querySelectorAll("input[required], input[pattern]");
    for (var i = 0; i < fields.length; i++) {
      if (!fields[i].checkValidity()) { fields[i].reportValidity(); return false; }
    }
    return true;
  }

  form.classList.add("js-wizard");
  next.addEventListener("click", function () {
    if (stepValid(steps[current])) { show(current + 1); steps[current].querySelector("legend h2").focus(); }
  });
  back.addEventListener("click", function () { show(current - 1); });
  steps.forEach(function (step) { step.querySelector("legend h2").setAttribute("tabindex", "-1"); });
  show(current);

  // The slug follows the name until it is typed by hand.
  var name = document.getElementById("name");
  var slug = document.getElementById("slug");
  var slugTyped = slug.value !== "";
  function slugOf(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64).replace(/-+$/, "");
  }
  name.addEventListener("input", function () { if (!slugTyped) slug.value = slugOf(name.value); });
  slug.addEventListener("input", function () { slugTyped = slug.value !== ""; });

  function set(id, value) {
    var input = document.getElementById(id);
    if (!input) return;
    input.value = value === null || value === undefined ? "" : String(value);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function kind() {
    var checked = form.querySelector('input[name="kind"]:checked');
    return checked ? checked.value : "points";
  }

  // A template fills the next steps; its kind becomes the card's.
  function fill(template) {
    var settings = template ? template.settings : {};
    ["welcome_bonus", "birthday_bonus", "referrer_bonus", "referred_bonus", "redeem_cap_percent", "expiry_days"]
      .forEach(function (field) { if (field in settings || !template) set(field, settings[field]); });
    var tiers = template ? template.tiers : (kind() === "points" ? [
      { name: data.base_tier[0], qualifying_spend: data.base_tier[1], earn_percent: data.base_tier[2] }] : []);
    for (var i = 0; i < 4; i++) {
      var tier = tiers[i] || {};
      set("tier-" + i + "-name", tier.name);
      set("tier-" + i + "-qualifying_spend", tier.qualifying_spend);
      set("tier-" + i + "-earn_percent", tier.earn_percent);
    }
    var design = template ? template.design : data.default_design;
    Object.keys(design).forEach(function (field) { set(field, design[field]); });
    if (template) {
      var radio = form.querySelector('input[name="kind"][value="' + template.kind + '"]');
      if (radio) radio.checked = true;
    }
    preview();
  }
  form.querySelectorAll('input[name="template"]').forEach(function (radio) {
    radio.addEventListener("change", function () { fill(data.templates[radio.value] || null); });
  });
  form.querySelectorAll('input[name="kind"]').forEach(function (radio) {
    radio.addEventListener("change", function () {
      var chosen = form.querySelector('input[name="template"]:checked');
      var template = chosen && data.templates[chosen.value];
      if (template && template.kind !== kind()) {  // a template of the other kind no longer fits
        form.querySelector('input[name="template"][value=""]').checked = true;
        fill(null);
      }
      preview();
    });
  });

  // The preview's balance and tier (colours and names: dashboard-programme.js).
  function preview() {
    var stamps = kind() === "stamps";
    var chosen = form.querySelector('input[name="template"]:checked');
    var template = chosen && data.templates[chosen.value];
    var required = template && template.settings.stamps_required ? template.settings.stamps_required : 10;
    document.querySelectorAll('[data-text="balance_label"]').forEach(function (el) {
      el.textContent = stamps ? "Stamps" : "Points"; });
    document.querySelectorAll('[data-text="balance_label_upper"]').forEach(function (el) {
      el.textContent = stamps ? "STAMPS" : "POINTS"; });
    document.querySelectorAll('[data-text="balance"]').forEach(function (el) {
      el.textContent = stamps ? "3 / " + required : "120"; });
    var tier = document.getElementById("tier-0-name").value.trim();
    document.querySelectorAll('[data-text="tier"]').forEach(function (el) { el.textContent = tier; });
    document.querySelectorAll('[data-show="tier"]').forEach(function (el) { el.hidden = !tier; });
  }
  document.getElementById("tier-0-name").addEventListener("input", preview);
  preview();
})();
