// The card page: register the service worker (/sw.js), and the web-push opt-in when the server has a
// VAPID key: subscribe with it and send the subscription to the card's push endpoint.
(function () {
  "use strict";
  if (!("serviceWorker" in navigator)) return;
  const box = document.getElementById("push");

  function key(base64url) {
    const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function send(subscription) {
    const response = await fetch(box.dataset.url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": box.dataset.csrf},
      body: JSON.stringify(subscription),
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(box.dataset.failed + " (" + response.status + ")");
  }

  async function offerPush(registration) {
    if (!box || !box.dataset.key || !("PushManager" in window)) return;
    const state = document.getElementById("push-state");
    const button = document.getElementById("push-on");
    box.hidden = false;
    if (await registration.pushManager.getSubscription()) {
      state.textContent = box.dataset.on;
      button.hidden = true;
    }
    button.addEventListener("click", async () => {
      try {
        const subscription = await registration.pushManager.subscribe(
          {userVisibleOnly: true, applicationServerKey: key(box.dataset.key)});
        await send(subscription.toJSON());
        state.textContent = box.dataset.on;
        button.hidden = true;
      } catch (error) {
        state.textContent = String(error.message || error);
      }
    });
  }

  navigator.serviceWorker.register("/sw.js", {scope: "/"}).then((registration) => {
    document.documentElement.dataset.serviceWorker = "registered";
    return offerPush(registration);
  }).catch((error) => { document.documentElement.dataset.serviceWorker = "failed: " + error; });
})();
