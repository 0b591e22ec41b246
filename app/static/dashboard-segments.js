// The RFM view's bar chart: labels and values in the standard segment order (a JSON object would be sorted).
(function () {
  "use strict";
  var node = document.getElementById("rfm-chart-data");
  var canvas = document.getElementById("chart-rfm");
  if (!node || !canvas || typeof Chart === "undefined") return;
  var data = JSON.parse(node.textContent);
  new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: [{ label: "Customers", data: data.values, backgroundColor: "#4a9d6f" }] },
    options: { indexAxis: "y", responsive: true, animation: false, plugins: { legend: { display: false } },
               scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
  });
})();

// The segment builder: conditions as rows (field, operator, value) in ALL/ANY/NONE groups, one level of
// nesting, kept in the form's "rules" textarea as JSON, with a live count of matching customers. The page
// embeds its data (fields and operators from the server's own rule definitions) in #builder-data; the CSP
// forbids inline code, so everything happens here.
(function () {
  "use strict";
  var dataNode = document.getElementById("builder-data");
  var root = document.getElementById("builder");
  var textarea = document.getElementById("rules");
  var countNode = document.getElementById("segment-count");
  var countNote = document.getElementById("segment-count-note");
  if (!dataNode || !root || !textarea || !countNode) return;

  var data = JSON.parse(dataNode.textContent);
  var cat = data.catalog;
  var editable = !!data.editable;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var fields = {};
  cat.fields.forEach(function (f) { fields[f.name] = f; });
  var SELECT_KINDS = { tier: 1, rfm: 1, store: 1, month: 1, channel: 1 };
  var INT_KINDS = { count: 1, days: 1, month: 1, store: 1 };

  var nextId = 1;
  var model = null; // {mode, items: [cond | group]}; null when the tree is too complex for the builder
  var serverErrors = data.errors || {};

  // ------------------------------------------------------------ the model <-> the JSON tree

  function isGroup(node) {
    return node && typeof node === "object" && !Array.isArray(node) && ("all" in node || "any" in node || "not" in node);
  }

  function groupOf(node) { // {mode, list} or null
    if (!isGroup(node)) return null;
    var keys = Object.keys(node);
    if (keys.length !== 1) return null;
    if (Array.isArray(node.all)) return { mode: "all", list: node.all };
    if (Array.isArray(node.any)) return { mode: "any", list: node.any };
    var inner = node.not;
    if (inner && typeof inner === "object" && Object.keys(inner).length === 1 && Array.isArray(inner.any)) {
      return { mode: "none", list: inner.any };
    }
    return null;
  }

  function condFrom(node) {
    if (!node || typeof node !== "object" || Array.isArray(node) || isGroup(node)) return null;
    var allowed = { field: 1, op: 1, value: 1, days: 1, stores: 1 };
    for (var key in node) { if (!allowed[key]) return null; }
    if (!fields[node.field]) return null;
    return { type: "cond", id: nextId++, field: node.field, op: node.op, value: node.value,
             days: node.days === undefined ? null : node.days, stores: node.stores === undefined ? null : node.stores };
  }

  function toModel(tree) {
    var top = groupOf(tree);
    if (!top) {
      var single = condFrom(tree);
      return single ? { mode: "all", items: [single] } : null;
    }
    var items = [];
    for (var i = 0; i < top.list.length; i++) {
      var child = top.list[i];
      var inner = groupOf(child);
      if (inner) {
        var conds = [];
        for (var j = 0; j < inner.list.length; j++) {
          var c = condFrom(inner.list[j]);
          if (!c) return null;
          conds.push(c);
        }
        items.push({ type: "group", id: nextId++, mode: inner.mode, items: conds });
      } else {
        var cond = condFrom(child);
        if (!cond) return null;
        items.push(cond);
      }
    }
    return { mode: top.mode, items: items };
  }

  function condTree(c) {
    var out = { field: c.field, op: c.op, value: c.value };
    if (c.days !== null && c.days !== undefined && c.days !== "") out.days = c.days;
    if (c.stores !== null && c.stores !== undefined && c.stores.length) out.stores = c.stores;
    return out;
  }

  function wrap(mode, list) {
    if (mode === "any") return { any: list };
    if (mode === "none") return { not: { any: list } };
    return { all: list };
  }

  function toTree(m) {
    return wrap(m.mode, m.items.map(function (item) {
      return item.type === "group" ? wrap(item.mode, item.items.map(condTree)) : condTree(item);
    }));
  }

  function listPath(base, mode) { return base + (mode === "none" ? ".not.any" : "." + mode); }

  // ------------------------------------------------------------ values

  function defaultValue(field, op) {
    var f = fields[field];
    var opts = cat.options[f.kind];
    if (op === "in") return opts && opts.length ? [opts[0].value] : [];
    if (op === "between") return ["", ""];
    if (SELECT_KINDS[f.kind]) return opts && opts.length ? opts[0].value : null;
    return "";
  }

  function numberOf(kind, raw) {
    var text = String(raw).trim();
    if (text === "" || isNaN(Number(text))) return text;
    return kind === "money" ? text : Number(text);
  }

  function optionValue(kind, raw) { return INT_KINDS[kind] ? Number(raw) : raw; }

  // ------------------------------------------------------------ drawing

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) {
      if (attrs[key] === null || attrs[key] === undefined || attrs[key] === false) continue;
      node.setAttribute(key, attrs[key] === true ? "" : attrs[key]);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function select(id, part, choices, current, multiple, label) {
    var s = el("select", { id: id, "data-part": part, multiple: multiple || null, disabled: !editable, "aria-label": label });
    choices.forEach(function (choice) {
      var o = el("option", { value: String(choice.value) }, choice.label);
      var chosen = multiple ? (current || []).map(String).indexOf(String(choice.value)) >= 0
                            : String(current) === String(choice.value);
      if (chosen) o.selected = true;
      s.appendChild(o);
    });
    if (multiple) s.size = Math.min(6, Math.max(3, choices.length));
    return s;
  }

  function numberInput(id, part, f, value, label) {
    return el("input", { id: id, type: "number", "data-part": part, step: f.step, min: f.kind === "km" ? "0" : "0",
                         value: value === null || value === undefined ? "" : String(value), disabled: !editable,
                         "aria-label": label, inputmode: f.kind === "money" || f.kind === "km" ? "decimal" : "numeric" });
  }

  function valueControls(c, prefix) {
    var f = fields[c.field];
    var box = el("span", { "class": "seg-value" });
    var opts = cat.options[f.kind] || [];
    if (c.op === "between") {
      var pair = Array.isArray(c.value) ? c.value : ["", ""];
      box.appendChild(numberInput(prefix + "-value-from", "from", f, pair[0], f.label + ": from"));
      box.appendChild(el("span", { "class": "seg-and" }, "and"));
      box.appendChild(numberInput(prefix + "-value-to", "to", f, pair[1], f.label + ": to"));
    } else if (c.op === "in") {
      if (!opts.length) box.appendChild(el("span", { "class": "dash-muted" }, emptyChoices(f.kind)));
      else box.appendChild(select(prefix + "-value", "value", opts, c.value, true, f.label + ": values"));
    } else if (SELECT_KINDS[f.kind]) {
      if (!opts.length) box.appendChild(el("span", { "class": "dash-muted" }, emptyChoices(f.kind)));
      else box.appendChild(select(prefix + "-value", "value", opts, c.value, false, f.label + ": value"));
    } else if (f.input === "number") {
      box.appendChild(numberInput(prefix + "-value", "value", f, c.value, f.label + ": value"));
      if (f.kind === "money" && cat.currency) box.appendChild(el("span", { "class": "dash-muted" }, cat.currency));
      if (f.kind === "km") box.appendChild(el("span", { "class": "dash-muted" }, "km"));
    } else {
      box.appendChild(el("input", { id: prefix + "-value", type: "text", "data-part": "value", maxlength: "254",
                                    value: c.value === null || c.value === undefined ? "" : String(c.value),
                                    disabled: !editable, "aria-label": f.label + ": value" }));
    }
    if (f.days) {
      box.appendChild(el("label", { "for": prefix + "-days", "class": "seg-inline" }, "in the last"));
      box.appendChild(el("input", { id: prefix + "-days", type: "number", "data-part": "days", min: "1", step: "1",
                                    placeholder: "any time", value: c.days === null ? "" : String(c.days),
                                    disabled: !editable, "class": "seg-days" }));
      box.appendChild(el("span", { "class": "dash-muted" }, "days"));
    }
    if (f.stores) {
      var stores = cat.options.store || [];
      if (stores.length) {
        box.appendChild(el("label", { "for": prefix + "-stores", "class": "seg-inline" }, "of (optional)"));
        box.appendChild(select(prefix + "-stores", "stores", stores, c.stores || [], true, "Stores (none chosen: any store)"));
      }
    }
    return box;
  }

  function emptyChoices(kind) {
    return { tier: "This programme has no tiers.", store: "This programme has no stores yet." }[kind] || "Nothing to choose.";
  }

  function condRow(c, container, list, path) {
    var prefix = "cond-" + c.id;
    var f = fields[c.field];
    var row = el("div", { "class": "seg-row", id: prefix, "data-path": path, role: "group", "aria-label": "Condition" });
    var line = el("div", { "class": "seg-line" });
    line.appendChild(select(prefix + "-field", "field", cat.fields.map(function (x) { return { value: x.name, label: x.label }; }),
                            c.field, false, "Field"));
    line.appendChild(select(prefix + "-op", "op", f.ops, c.op, false, "Operator"));
    line.appendChild(valueControls(c, prefix));
    if (editable) {
      var remove = el("button", { type: "button", "class": "secondary seg-remove", id: prefix + "-remove",
                                  "aria-label": "Remove this condition" }, "Remove");
      remove.addEventListener("click", function () { list.splice(list.indexOf(c), 1); changed(true); });
      line.appendChild(remove);
    }
    row.appendChild(line);
    if (f.hint && f.input !== "select" && c.op !== "in") row.appendChild(el("p", { "class": "dash-hint seg-hint" }, f.hint));
    row.appendChild(el("p", { "class": "dash-error seg-row-error", id: prefix + "-error", hidden: true }));

    row.addEventListener("change", function (event) { onEdit(c, event.target); });
    row.addEventListener("input", function (event) {
      if (event.target.tagName === "INPUT") onEdit(c, event.target);
    });
    container.appendChild(row);
  }

  function onEdit(c, target) {
    var part = target.getAttribute("data-part");
    var f = fields[c.field];
    if (part === "field") {
      c.field = target.value;
      c.op = fields[c.field].ops[0].value;
      c.value = defaultValue(c.field, c.op);
      c.days = null;
      c.stores = null;
      changed(true);
      return;
    }
    if (part === "op") {
      var before = c.op;
      c.op = target.value;
      var shape = function (op) { return op === "in" ? "list" : (op === "between" ? "pair" : "one"); };
      if (shape(before) !== shape(c.op)) c.value = defaultValue(c.field, c.op);
      changed(true);
      return;
    }
    if (part === "value") {
      if (target.multiple) {
        c.value = Array.prototype.filter.call(target.options, function (o) { return o.selected; })
          .map(function (o) { return optionValue(f.kind, o.value); });
      } else if (target.tagName === "SELECT") {
        c.value = optionValue(f.kind, target.value);
      } else if (target.type === "number") {
        c.value = numberOf(f.kind, target.value);
      } else {
        c.value = target.value;
      }
    } else if (part === "from" || part === "to") {
      var pair = Array.isArray(c.value) ? c.value.slice() : ["", ""];
      pair[part === "from" ? 0 : 1] = numberOf(f.kind, target.value);
      c.value = pair;
    } else if (part === "days") {
      var days = target.value.trim();
      c.days = days === "" ? null : numberOf("count", days);
    } else if (part === "stores") {
      c.stores = Array.prototype.filter.call(target.options, function (o) { return o.selected; })
        .map(function (o) { return Number(o.value); });
    } else {
      return;
    }
    changed(false);
  }

  function modeSelect(id, current, onChange) {
    var s = select(id, "mode", cat.groups, current, false, "How the conditions combine");
    s.addEventListener("change", function () { onChange(s.value); changed(true); });
    return s;
  }

  function addButton(id, text, onClick) {
    var b = el("button", { type: "button", "class": "secondary", id: id }, text);
    b.addEventListener("click", onClick);
    return b;
  }

  function newCond() {
    var first = cat.fields[0];
    return { type: "cond", id: nextId++, field: first.name, op: first.ops[0].value,
             value: defaultValue(first.name, first.ops[0].value), days: null, stores: null };
  }

  function draw() {
    root.textContent = "";
    if (!model) {
      root.appendChild(el("p", { "class": "dash-hint", id: "builder-unsupported" },
        "These rules are nested more deeply than the builder shows; edit them as JSON below (the count still updates)."));
      return;
    }
    var head = el("div", { "class": "seg-group-head" });
    head.appendChild(el("label", { "for": "root-mode" }, "Customers who match"));
    head.appendChild(modeSelect("root-mode", model.mode, function (v) { model.mode = v; }));
    root.appendChild(head);
    var base = listPath("rules", model.mode);
    var list = el("div", { "class": "seg-list", id: "root-list" });
    if (!model.items.length) {
      list.appendChild(el("p", { "class": "dash-muted seg-empty" }, model.mode === "all"
        ? "No conditions yet: every customer with an active card matches. Add a condition to narrow it down."
        : "No conditions yet: nobody matches. Add a condition."));
    }
    model.items.forEach(function (item, i) {
      if (item.type === "cond") { condRow(item, list, model.items, base + "." + i); return; }
      var gid = "group-" + item.id;
      var box = el("div", { "class": "seg-group", id: gid, "data-path": base + "." + i, role: "group", "aria-label": "Group" });
      var gh = el("div", { "class": "seg-group-head" });
      gh.appendChild(el("label", { "for": gid + "-mode" }, "Match"));
      gh.appendChild(modeSelect(gid + "-mode", item.mode, function (v) { item.mode = v; }));
      if (editable) {
        var rm = addButton(gid + "-remove", "Remove group", function () { model.items.splice(model.items.indexOf(item), 1); changed(true); });
        rm.classList.add("seg-remove");
        gh.appendChild(rm);
      }
      box.appendChild(gh);
      var inner = listPath(base + "." + i, item.mode);
      item.items.forEach(function (c, j) { condRow(c, box, item.items, inner + "." + j); });
      box.appendChild(el("p", { "class": "dash-error seg-row-error", id: gid + "-error", hidden: true }));
      if (editable) {
        box.appendChild(addButton(gid + "-add", "Add a condition to this group", function () { item.items.push(newCond()); changed(true); }));
      }
      list.appendChild(box);
    });
    root.appendChild(list);
    if (editable) {
      var tools = el("div", { "class": "dash-toolbar" });
      tools.appendChild(addButton("add-condition", "Add a condition", function () { model.items.push(newCond()); changed(true); }));
      tools.appendChild(addButton("add-group", "Add a group (all/any of…)", function () {
        model.items.push({ type: "group", id: nextId++, mode: "any", items: [newCond()] });
        changed(true);
      }));
      root.appendChild(tools);
    }
    root.appendChild(el("div", { "class": "dash-error", id: "builder-error", hidden: true }));
  }

  // ------------------------------------------------------------ errors beside the rows

  function showErrors(errors) {
    Array.prototype.forEach.call(root.querySelectorAll(".seg-row-error"), function (p) { p.hidden = true; p.textContent = ""; });
    Array.prototype.forEach.call(root.querySelectorAll("[aria-invalid]"), function (n) { n.removeAttribute("aria-invalid"); });
    var rest = [];
    Object.keys(errors || {}).forEach(function (path) {
      if (path === "name" || path === "program") return;
      var message = errors[path];
      var holders = Array.prototype.filter.call(root.querySelectorAll("[data-path]"), function (n) {
        var p = n.getAttribute("data-path");
        return path === p || path.indexOf(p + ".") === 0;
      });
      // The deepest node whose path leads to the error (a row before its group).
      holders.sort(function (a, b) { return b.getAttribute("data-path").length - a.getAttribute("data-path").length; });
      var holder = holders[0];
      if (!holder) { rest.push(message); return; }
      var box = document.getElementById(holder.id + "-error");
      var part = path.slice(holder.getAttribute("data-path").length + 1).split(".")[0];
      var control = part && holder.querySelector('[data-part="' + part + '"]');
      if (part === "value" && !control) control = holder.querySelector('[data-part="from"]');
      if (control) { control.setAttribute("aria-invalid", "true"); control.setAttribute("aria-describedby", box.id); }
      var label = { field: "Field", op: "Operator", value: "Value", days: "Days", stores: "Stores" }[part];
      box.textContent = (box.textContent ? box.textContent + " " : "") + (label ? label + ": " : "") + message;
      box.hidden = false;
    });
    var general = document.getElementById("builder-error");
    if (general) { general.textContent = rest.join(" "); general.hidden = !rest.length; }
  }

  // ------------------------------------------------------------ the live count

  var timer = null;
  var sequence = 0;

  function setCount(state, text, count, note) {
    countNode.setAttribute("data-state", state);
    countNode.setAttribute("data-count", count === null ? "" : String(count));
    countNode.textContent = text;
    if (countNote) countNote.textContent = note || "";
  }

  function requestCount(tree) {
    var mine = ++sequence;
    setCount("loading", countNode.textContent, countNode.getAttribute("data-count") || null, "counting…");
    fetch(data.count_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrfToken },
      body: JSON.stringify({ program: data.program, rules: tree })
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) { return { status: response.status, body: body }; });
    }).then(function (answer) {
      if (mine !== sequence) return; // a newer edit is being counted
      if (answer.status === 200 && typeof answer.body.count === "number") {
        setCount("ok", answer.body.count.toLocaleString(), answer.body.count, "");
        showErrors({});
      } else if (answer.status === 422 && answer.body.errors) {
        setCount("error", "—", null, "Complete or correct the marked conditions to see the count.");
        showErrors(answer.body.errors);
      } else {
        setCount("error", "—", null, answer.status === 403 ? "Your session has expired; reload the page." : "The count is not available right now.");
      }
    }).catch(function () {
      if (mine === sequence) setCount("error", "—", null, "The count is not available right now (no connection?).");
    });
  }

  function scheduleCount(tree) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(function () { timer = null; requestCount(tree); }, 400);
  }

  function changed(redraw) {
    if (redraw) draw();
    var tree = toTree(model);
    textarea.value = JSON.stringify(tree, null, 1);
    textarea.removeAttribute("aria-invalid");
    scheduleCount(tree);
  }

  textarea.addEventListener("input", function () {
    var tree;
    try { tree = JSON.parse(textarea.value); } catch (e) {
      setCount("error", "—", null, "The JSON below is not valid.");
      return;
    }
    model = toModel(tree);
    draw();
    scheduleCount(tree);
  });

  // ------------------------------------------------------------ start

  var initial;
  try { initial = JSON.parse(textarea.value || '{"all": []}'); } catch (e) { initial = null; }
  model = initial === null ? null : toModel(initial);
  if (initial !== null && model && Object.keys(serverErrors).length === 0) {
    textarea.value = JSON.stringify(toTree(model), null, 1);
  }
  draw();
  var details = document.getElementById("rules-json");
  if (details && model && !serverErrors.rules) details.open = false;
  showErrors(serverErrors);
  if (initial !== null) requestCount(initial);
  else setCount("error", "—", null, "The JSON below is not valid.");
})();
