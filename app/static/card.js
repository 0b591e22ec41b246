// The card page: register the service worker (/sw.js), and the web-push opt-in when the server has a
// VAPID key: subscribe with it and send the subscription to the card's push endpoint.
//
// One browser has one push subscription (one service worker), and the server never moves a subscription
// that another card holds (anyone who once saw its endpoint and keys could post them). So when this card's
// endpoint answers 409, the subscription belongs to another card opened in this browser: the script
// unsubscribes it at the push service and subscribes afresh, which only this browser can do, and sends the
// new one. Which card the browser's subscription serves is remembered as a hash of the card's push URL
// (never the URL itself: it holds the card's secret token, and the device may be shared).
//
// Also: the invitation's share button (the Web Share API, else the link copied to the clipboard, else the link
// shown to copy by hand, each with a visible confirmation), and on iPhone and iPad outside the home-screen app a
// note that web push needs the card added to the Home Screen (Safari offers push only there).
(function () {
  "use strict";

  function offerShare() {
    const button = document.getElementById("share");
    if (!button) return;
    const state = document.getElementById("share-state");
    const link = document.getElementById("share-link");
    const data = {title: button.dataset.title, text: button.dataset.text, url: button.dataset.url};
    function showLink() {
      state.textContent = button.dataset.failed;
      link.hidden = false;
    }
    button.addEventListener("click", async () => {
      if (navigator.share && (!navigator.canShare || navigator.canShare(data))) {
        try {
          await navigator.share(data);
          return;
        } catch (error) {
          if (error && error.name === "AbortError") return;  // the shopper closed the share sheet
        }
      }
      try {
        await navigator.clipboard.writeText(data.text + " " + data.url);
        state.textContent = button.dataset.copied;
        document.documentElement.dataset.shared = "copied";
      } catch (error) {
        showLink();
        document.documentElement.dataset.shared = "shown";
      }
    });
  }

  function homeScreenNote() {
    const note = document.getElementById("ios-home");
    if (!note) return;
    const ios = /iPhone|iPad|iPod/.test(navigator.userAgent)
      || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);  // iPadOS asks for the desktop site
    const installed = navigator.standalone === true || window.matchMedia("(display-mode: standalone)").matches;
    note.hidden = !(ios && !installed);
  }

  offerShare();
  homeScreenNote();
  if (!("serviceWorker" in navigator)) return;
  const box = document.getElementById("push");
  const OWNER = "tallypass-push-card";

  function key(base64url) {
    const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function fingerprint(text) {
    if (!(window.crypto && crypto.subtle)) return null;
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function remember(owned) {
    try {
      const mark = owned ? await fingerprint(box.dataset.url) : null;
      if (mark) localStorage.setItem(OWNER, mark); else localStorage.removeItem(OWNER);
    } catch (error) { /* storage refused (private mode): the page just offers the button again */ }
  }

  async function isOurs() {
    try {
      const mark = await fingerprint(box.dataset.url);
      return mark !== null && localStorage.getItem(OWNER) === mark;
    } catch (error) { return false; }
  }

  function send(subscription) {
    return fetch(box.dataset.url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": box.dataset.csrf},
      body: JSON.stringify(subscription),
      credentials: "same-origin",
    });
  }

  async function offerPush(registration) {
    if (!box || !box.dataset.key || !("PushManager" in window)) return;
    const state = document.getElementById("push-state");
    const button = document.getElementById("push-on");
    const options = {userVisibleOnly: true, applicationServerKey: key(box.dataset.key)};
    box.hidden = false;
    if (await registration.pushManager.getSubscription() && await isOurs()) {
      state.textContent = box.dataset.on;
      button.hidden = true;
    }
    button.addEventListener("click", async () => {
      try {
        let subscription = await registration.pushManager.subscribe(options);
        let response = await send(subscription.toJSON());
        if (response.status === 409) {  // another card's, in this browser: a new subscription is this card's
          await subscription.unsubscribe();
          subscription = await registration.pushManager.subscribe(options);
          response = await send(subscription.toJSON());
        }
        if (!response.ok) throw new Error("the server answered " + response.status);
        await remember(true);
        state.textContent = box.dataset.on;
        button.hidden = true;
      } catch (error) {
        // The page's own words, in its language: the browser's exception is English and technical.
        const denied = window.Notification && Notification.permission === "denied";
        state.textContent = denied ? box.dataset.denied : box.dataset.failed;
        document.documentElement.dataset.pushError = (error && error.name) || "Error";
      }
    });
  }

  navigator.serviceWorker.register("/sw.js", {scope: "/"}).then((registration) => {
    document.documentElement.dataset.serviceWorker = "registered";
    return offerPush(registration);
  }).catch((error) => { document.documentElement.dataset.serviceWorker = "failed: " + error; });
})();
