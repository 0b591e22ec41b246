// Campaign pages: the composer (variants, live per-channel preview), the live progress bar, the results chart,
// and confirmations. No inline script or style: the dashboard's CSP forbids them.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // ---------------------------------------------------------------- composer
  var form = document.getElementById("composer");
  if (form) {
    var list = document.getElementById("variants");
    var addButton = document.getElementById("add-variant");
    var template = document.getElementById("variant-template");
    var letters = "ABCDEFGHIJ";

    var renumber = function () {
      var sets = list.querySelectorAll("fieldset.variant");
      sets.forEach(function (set, i) {
        set.querySelectorAll("input, textarea").forEach(function (field) {
          field.id = field.name + "_" + i;
          var label = field.previousElementSibling;
          if (label && label.tagName === "LABEL") label.htmlFor = field.id;
        });
        var name = set.querySelector('[name="variant_name"]');
        set.querySelector(".variant-label").textContent = (name && name.value) || String(i + 1);
        set.querySelector(".variant-remove").hidden = sets.length < 2;
      });
      addButton.disabled = sets.length >= Number(addButton.dataset.max || 10);
      var nextName = document.getElementById("add-variant-name");
      if (nextName) nextName.textContent = letters.charAt(sets.length);
    };

    addButton.addEventListener("click", function () {
      var count = list.querySelectorAll("fieldset.variant").length;
      var copy = template.content.firstElementChild.cloneNode(true);
      copy.querySelector('[name="variant_name"]').value = letters.charAt(count) || String(count + 1);
      list.appendChild(copy);
      renumber();
      schedulePreview();
      copy.querySelector("textarea").focus();
    });
    list.addEventListener("click", function (event) {
      if (event.target.classList.contains("variant-remove")) {
        event.target.closest("fieldset").remove();
        renumber();
        schedulePreview();
      }
    });

    var timer = null;
    var sequence = 0;
    var schedulePreview = function () {
      clearTimeout(timer);
      timer = setTimeout(preview, 350);
    };

    var collect = function () {
      var variants = [];
      list.querySelectorAll("fieldset.variant").forEach(function (set) {
        variants.push({
          name: set.querySelector('[name="variant_name"]').value.slice(0, 40),
          title: set.querySelector('[name="variant_title"]').value,
          body: set.querySelector('[name="variant_body"]').value
        });
      });
      var channels = [];
      ["channel_1", "channel_2", "channel_3"].forEach(function (id) {
        var value = document.getElementById(id).value;
        if (value && channels.indexOf(value) < 0) channels.push(value);
      });
      var segment = document.getElementById("segment_id").value;
      return { program: form.dataset.program, segment_id: segment ? Number(segment) : null,
               channels: channels, variants: variants };
    };

    var show = function (data) {
      var box = document.getElementById("preview");
      box.textContent = "";
      document.getElementById("preview-sample").textContent = "As " + data.sample + " would see it:";
      data.variants.forEach(function (variant) {
        var card = el("article", "preview-variant");
        card.dataset.variant = variant.name;
        card.appendChild(el("h3", null, "Variant " + (variant.name || "?")));
        if (variant.error) {
          card.appendChild(el("p", "dash-error preview-error", variant.error));
        }
        variant.channels.forEach(function (channel) {
          var item = el("div", "preview-channel preview-" + channel.channel);
          item.dataset.channel = channel.channel;
          item.appendChild(el("h4", null, channel.label));
          var bubble = el("div", "preview-bubble");
          if (channel.title) bubble.appendChild(el("strong", null, channel.title));
          bubble.appendChild(el("p", null, channel.body));
          item.appendChild(bubble);
          item.appendChild(el("small", "dash-muted", channel.note));
          if (channel.warning) item.appendChild(el("p", "dash-error preview-warning", channel.warning));
          card.appendChild(item);
        });
        box.appendChild(card);
      });
    };

    var preview = function () {
      var mine = ++sequence;
      fetch(form.dataset.previewUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(collect())
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (result) {
        if (mine !== sequence) return; // a newer preview is on its way
        if (result.ok) {
          show(result.data);
        } else {
          document.getElementById("preview-sample").textContent =
            "No preview: " + (result.data.detail || "give each variant a name and a text (at most 2,000 characters).");
        }
      }).catch(function () {
        document.getElementById("preview-sample").textContent = "The preview is unavailable right now.";
      });
    };

    form.addEventListener("input", schedulePreview);
    form.addEventListener("change", schedulePreview);
    renumber();
    preview();
  }

  // ---------------------------------------------------------------- live progress
  var panel = document.getElementById("progress-panel");
  if (panel) {
    var bar = document.getElementById("progress");
    var initial = panel.dataset.state;
    var live = { scheduled: true, running: true };
    var poll = function () {
      fetch(panel.dataset.progressUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) return;
          bar.value = data.percent;
          bar.dataset.percent = String(data.percent);
          bar.textContent = data.percent + " %";
          document.getElementById("progress-percent").textContent = data.percent + " %";
          document.getElementById("progress-state").textContent = data.state;
          if (data.audience_size !== null) {
            document.getElementById("progress-audience").textContent = data.audience_size.toLocaleString();
          }
          Object.keys(data.counts).forEach(function (status) {
            var cell = document.getElementById("count-" + status);
            if (cell) cell.textContent = String(data.counts[status]);
          });
          panel.dataset.state = data.state;
          if (data.state !== initial) {
            window.location.reload(); // other actions apply now (pause, results...)
          } else if (live[data.state]) {
            setTimeout(poll, 2000);
          }
        })
        .catch(function () { setTimeout(poll, 5000); });
    };
    if (live[initial]) setTimeout(poll, 1500);
  }

  // ---------------------------------------------------------------- confirmations
  document.querySelectorAll("form.confirm").forEach(function (confirmForm) {
    confirmForm.addEventListener("submit", function (event) {
      if (!window.confirm(confirmForm.dataset.confirm)) event.preventDefault();
    });
  });

  // ---------------------------------------------------------------- results chart
  var data = document.getElementById("results-data");
  var canvas = document.getElementById("chart-variants");
  if (data && canvas && typeof Chart !== "undefined") {
    var chart = JSON.parse(data.textContent);
    new Chart(canvas, {
      type: "bar",
      data: { labels: chart.labels, datasets: [{ label: "Bought within the window (%)", data: chart.rates,
        backgroundColor: chart.labels.map(function (l) { return l === "Holdout" ? "#9aa3b2" : "#2f6fde"; }) }] },
      options: { responsive: true, animation: false, plugins: { legend: { display: false } },
                 scales: { y: { beginAtZero: true, ticks: { callback: function (v) { return v + " %"; } } } } }
    });
  }
})();
