// The till: identify a customer (camera or typed number/phone), quote, confirm, record; refund by receipt.
//
// Nothing is ever recorded twice: each confirmation makes one attempt id (a UUID) and every retry of that
// attempt (a second tap, "Try again" after a timeout or a lost answer) sends the same id, which the server
// records once and replays. Nothing is kept to send later either: with no network the till says so, and the
// cashier decides whether to try again.
(() => {
  "use strict";
  const root = document.getElementById("till");
  if (!root) return;
  const T = JSON.parse(document.getElementById("till-texts").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const store = Number(root.dataset.store);
  const barcodeLength = Number(root.dataset.barcodeLength);
  const $ = (id) => document.getElementById(id);
  const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (match, key) => String(values[key]));
  const SECTIONS = ["identify", "customer", "confirm", "done", "refund"];
  const TIMEOUT_MS = 15000;

  let card = null;      // the card on screen, as the server last described it
  let sale = null;      // {amount, redeem_points} being confirmed
  let attempt = null;   // the attempt id of the purchase or refund being confirmed
  let pending = null;   // the call to send again with "Try again" (same attempt)
  let busy = false;

  // ------------------------------------------------------------------ screen

  function show(section) {
    for (const id of SECTIONS) $(id).hidden = id !== section;
    $("tab-sale").setAttribute("aria-pressed", String(section !== "refund"));
    $("tab-refund").setAttribute("aria-pressed", String(section === "refund"));
    const heading = $(section).querySelector("h1, h2");
    if (heading) { heading.tabIndex = -1; heading.focus({preventScroll: true}); }
  }

  function clearErrors(scope) {
    for (const element of scope.querySelectorAll(".error")) { element.hidden = true; element.textContent = ""; }
    for (const input of scope.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  function sayError(id, message) {
    const element = $(id);
    element.textContent = message;
    element.hidden = false;
  }

  // A refusal's messages beside the fields they name (``ids``: the field's input id where it differs from its
  // name), else in ``fallback``.
  function sayProblem(problem, fallback, ids = {}) {
    let placed = false;
    for (const error of problem.errors || []) {
      const field = String(error.field || "").split(".")[0];
      const id = ids[field] || field;
      const target = $(id + "-error");
      if (target && !target.parentElement.closest("[hidden]")) {
        sayError(target.id, error.message);
        const input = $(id);
        if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
        placed = true;
      }
    }
    if (!placed) sayError(fallback, problem.detail || T.unexpected);
  }

  function setOffline(offline) {
    $("offline").hidden = !offline;
    document.documentElement.dataset.network = offline ? "offline" : "online";
  }

  window.addEventListener("offline", () => setOffline(true));
  window.addEventListener("online", () => setOffline(false));
  if (navigator.onLine === false) setOffline(true);

  function newAttempt() {
    if (self.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // ------------------------------------------------------------------ server

  class NoAnswer extends Error {}

  async function call(path, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let response;
    try {
      response = await fetch(path, {
        method: "POST", credentials: "same-origin", cache: "no-store", signal: controller.signal,
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify(body),
      });
    } catch (error) {
      throw new NoAnswer(String(error));
    } finally {
      clearTimeout(timer);
    }
    let data = {};
    try { data = await response.json(); } catch (error) { data = {}; }
    if (response.status >= 500) throw new NoAnswer(`status ${response.status}`);
    return {status: response.status, ok: response.ok, data};
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Send an attempt until it has an answer: a moment's wait while the server still records the same attempt
  // (a second tap), "Try again" (same attempt) when there is no answer at all.
  async function record(path, body, onAnswer, errorId) {
    if (busy) return;
    busy = true;
    pending = null;
    $("retry").hidden = true;
    try {
      for (let tries = 0; ; tries++) {
        let answer;
        try {
          answer = await call(path, body);
        } catch (error) {
          // No answer: perhaps recorded, perhaps not. Only "Try again" (the same attempt) goes on from here.
          setOffline(true);
          sayError(errorId, T.offline);
          pending = {path, body, onAnswer, errorId};
          $(errorId).after($("retry"));
          $("retry").hidden = false;
          setSubmitHidden(errorId, true);
          return;
        }
        if (answer.status === 409 && String(answer.data.type || "").endsWith("idempotency-key-in-flight") && tries < 10) {
          await sleep(500);
          continue;
        }
        setOffline(false);
        setSubmitHidden(errorId, false);
        onAnswer(answer);
        return;
      }
    } finally {
      busy = false;
    }
  }

  // While an attempt waits for "Try again", nothing may start another one that could record the same thing
  // twice (its answer may only have been lost): the section's buttons are hidden and its fields read-only.
  function setSubmitHidden(errorId, hidden) {
    if (errorId === "refund-error") {
      $("do-refund").hidden = hidden;
      for (const input of $("refund-form").querySelectorAll("input")) input.readOnly = hidden;
    } else {
      $("do-confirm").hidden = hidden;
      $("back").hidden = hidden;
    }
  }

  $("retry").addEventListener("click", () => {
    if (!pending) return;
    const {path, body, onAnswer, errorId} = pending;
    $(errorId).hidden = true;
    record(path, body, onAnswer, errorId);
  });

  async function ask(path, body, errorId) {
    try {
      const answer = await call(path, body);
      setOffline(false);
      return answer;
    } catch (error) {
      setOffline(true);
      sayError(errorId, T.offline);
      return null;
    }
  }

  // ------------------------------------------------------------------ identify

  function reference(value) {
    const text = value.trim();
    const digits = text.replace(/[\s-]/g, "");
    if (/^[1-9][0-9]*$/.test(digits) && digits.length === barcodeLength) return {card: digits};
    return {phone: text};
  }

  function describe(found) {
    card = found;
    $("c-name").textContent = found.name || "—";
    $("c-tier").textContent = found.tier || (found.kind === "points" ? T.no_tier : "");
    if (found.kind === "stamps") {
      $("c-balance").textContent = fill(T.stamps_of, {stamps: found.stamps, required: found.stamps_required});
      $("c-cap").textContent = "";
    } else {
      $("c-balance").textContent = fill(T.balance, {points: found.balance});
      $("c-cap").textContent = fill(T.cap, {cap: found.cap});
    }
  }

  async function find(value) {
    clearErrors($("identify"));
    if (!value.trim()) { sayError("ref-error", T.not_found); return; }
    const answer = await ask("/till/api/lookup", {store, ...reference(value)}, "ref-error");
    if (!answer) return;
    if (!answer.ok) {
      sayProblem(answer.data, "ref-error", {card: "ref", phone: "ref"});
      $("ref").setAttribute("aria-invalid", "true");
      return;
    }
    describe(answer.data);
    $("sale").reset();
    clearErrors($("customer"));
    if ($("max-hint")) $("max-hint").textContent = "";
    show("customer");
    $("amount").focus();
  }

  $("find").addEventListener("submit", (event) => { event.preventDefault(); find($("ref").value); });

  // The camera: the browser's BarcodeDetector where it reads QR codes, the vendored jsQR otherwise.
  let stream = null;
  let scanning = false;

  async function detector() {
    if (!("BarcodeDetector" in window)) return null;
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      return formats.includes("qr_code") ? new window.BarcodeDetector({formats: ["qr_code"]}) : null;
    } catch (error) {
      return null;
    }
  }

  function stopScan() {
    scanning = false;
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    $("video").srcObject = null;
    $("camera").hidden = true;
    $("scan").hidden = false;
  }

  async function startScan() {
    clearErrors($("identify"));
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { sayError("ref-error", T.no_camera); return; }
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}, audio: false});
    } catch (error) {
      sayError("ref-error", error && error.name === "NotFoundError" ? T.no_camera : T.camera_refused);
      return;
    }
    const video = $("video");
    video.srcObject = stream;
    $("camera").hidden = false;
    $("scan").hidden = true;
    $("scan-hint").textContent = T.scanning;
    try { await video.play(); } catch (error) { /* autoplay of a muted stream is allowed; carry on */ }
    const native = await detector();
    root.dataset.decoder = native ? "BarcodeDetector" : "jsQR";
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d", {willReadFrequently: true});
    scanning = true;
    while (scanning) {
      let value = null;
      if (video.readyState >= 2 && video.videoWidth) {
        if (native) {
          try {
            const codes = await native.detect(video);
            if (codes.length) value = codes[0].rawValue;
          } catch (error) { /* a frame it could not read */ }
        } else if (window.jsQR) {
          const scale = Math.min(1, 800 / video.videoWidth);
          canvas.width = Math.round(video.videoWidth * scale);
          canvas.height = Math.round(video.videoHeight * scale);
          context.drawImage(video, 0, 0, canvas.width, canvas.height);
          const image = context.getImageData(0, 0, canvas.width, canvas.height);
          const code = window.jsQR(image.data, image.width, image.height, {inversionAttempts: "attemptBoth"});
          if (code && code.data) value = code.data;
        }
      }
      if (value) {
        stopScan();
        $("ref").value = value;
        await find(value);
        return;
      }
      await sleep(120);
    }
  }

  $("scan").addEventListener("click", startScan);
  $("stop-scan").addEventListener("click", stopScan);

  // ------------------------------------------------------------------ sale

  const amountText = () => $("amount").value.trim().replace(",", ".");
  const pointsText = () => ($("redeem_points") ? $("redeem_points").value.trim() || "0" : "0");

  let hintTimer = null;
  async function updateHint() {
    if (!card || card.kind !== "points") return;
    const amount = amountText();
    $("max-hint").textContent = "";
    if (!/^[0-9]{1,10}(\.[0-9]{1,2})?$/.test(amount)) return;
    const answer = await ask("/till/api/lookup", {store, card: card.card, amount}, "amount-error");
    if (!answer || !answer.ok || amountText() !== amount) return;
    const most = answer.data.max_redeemable;
    card.most = most.points;
    $("max-hint").textContent = fill(T.up_to, {points: most.points, discount: most.discount.text});
  }

  $("amount").addEventListener("input", () => {
    clearTimeout(hintTimer);
    hintTimer = setTimeout(updateHint, 300);
  });

  if ($("max")) {
    $("max").addEventListener("click", async () => {
      await updateHint();
      if (card && card.most !== undefined) $("redeem_points").value = String(card.most);
    });
  }

  $("sale").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors($("customer"));
    const points = pointsText();
    if (!/^[0-9]{1,9}$/.test(points)) {
      sayProblem({errors: [{field: "redeem_points", message: T.points_whole}]}, "amount-error");
      return;
    }
    const body = {store, card: card.card, amount: amountText(), redeem_points: Number(points)};
    const answer = await ask("/till/api/quote", body, "amount-error");
    if (!answer) return;
    if (!answer.ok) { sayProblem(answer.data, "amount-error"); return; }
    sale = {amount: body.amount, redeem_points: body.redeem_points};
    attempt = newAttempt();  // one attempt per confirmation; every retry of it reuses it
    const quote = answer.data;
    $("q-name").textContent = card.name;
    $("q-amount").textContent = quote.amount.text;
    $("q-due").textContent = quote.amount_due.text;
    if (card.kind === "points") {
      $("q-redeemed").textContent = String(quote.redeemed);
      $("q-discount").textContent = quote.discount.text;
      $("q-earned").textContent = `+${quote.earned}`;
      $("q-balance").textContent = String(quote.card.balance);
    } else {
      $("q-stamps").textContent = fill(T.stamps_of, {stamps: quote.card.stamps, required: quote.card.stamps_required});
    }
    clearErrors($("confirm"));
    show("confirm");
  });

  $("do-confirm").addEventListener("click", () => {
    if (!sale || !attempt) return;
    clearErrors($("confirm"));
    $("do-confirm").setAttribute("aria-busy", "true");
    const body = {store, card: card.card, amount: sale.amount, redeem_points: sale.redeem_points, attempt};
    record("/till/api/purchases", body, (answer) => {
      $("do-confirm").removeAttribute("aria-busy");
      if (!answer.ok) { sayError("confirm-error", answer.data.detail || T.unexpected); return; }
      const done = answer.data;
      describe({...card, ...done.card});
      $("d-balance").textContent = $("c-balance").textContent;
      $("d-due").textContent = done.amount_due.text;
      if ($("d-earned")) $("d-earned").textContent = `+${done.earned}`;
      $("d-receipt").textContent = done.receipt_id;
      const reward = (done.rewards || [])[0];
      $("d-reward").hidden = !reward;
      if (reward) $("d-reward").textContent = fill(T.reward, {name: reward.name});
      sale = null;
      attempt = null;
      show("done");
    }, "confirm-error").finally(() => $("do-confirm").removeAttribute("aria-busy"));
  });

  $("back").addEventListener("click", () => { sale = null; attempt = null; show("customer"); });

  function nextCustomer() {
    card = null; sale = null; attempt = null; pending = null;
    $("retry").hidden = true;
    setSubmitHidden("confirm-error", false);
    $("find").reset();
    clearErrors($("identify"));
    show("identify");
  }

  $("next").addEventListener("click", nextCustomer);
  $("other").addEventListener("click", nextCustomer);

  // ------------------------------------------------------------------ refund

  // Not while an attempt waits for "Try again" (see setSubmitHidden).
  $("tab-sale").addEventListener("click", () => { if (pending) return; stopScan(); nextCustomer(); });
  $("tab-refund").addEventListener("click", () => {
    if (pending) return;
    stopScan();
    $("retry").hidden = true;
    setSubmitHidden("refund-error", false);
    $("refund-form").reset();
    $("refund-form").hidden = false;
    $("refund-done").hidden = true;
    clearErrors($("refund"));
    attempt = null;
    show("refund");
  });

  let refundAsked = null;
  $("refund-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors($("refund"));
    const body = {store, receipt_id: $("receipt_id").value.trim(),
                  amount: $("refund-amount").value.trim().replace(",", "."), attempt: null};
    const asked = JSON.stringify([body.receipt_id, body.amount]);
    if (!attempt || refundAsked !== asked) { attempt = newAttempt(); refundAsked = asked; }
    body.attempt = attempt;
    record("/till/api/refunds", body, (answer) => {
      if (!answer.ok) {
        sayProblem(answer.data, "refund-error", {amount: "refund-amount"});
        attempt = null;
        return;
      }
      const done = answer.data;
      $("r-amount").textContent = done.amount.text;
      $("r-reversed").textContent = String(done.points_reversed);
      $("r-returned").textContent = String(done.points_returned);
      $("r-balance").textContent = done.card.kind === "stamps"
        ? fill(T.stamps_of, {stamps: done.card.stamps, required: done.card.stamps_required})
        : fill(T.balance, {points: done.card.balance});
      $("refund-form").hidden = true;
      $("refund-done").hidden = false;
      attempt = null;
    }, "refund-error");
  });

  $("refund-next").addEventListener("click", () => $("tab-refund").click());

  // ------------------------------------------------------------------ offline shell

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/till/sw.js", {scope: "/till/"}).then(
      () => { document.documentElement.dataset.serviceWorker = "registered"; },
      () => { document.documentElement.dataset.serviceWorker = "failed"; });
  }
  root.dataset.ready = "true";
})();
