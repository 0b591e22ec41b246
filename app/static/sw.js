// Tallypass service worker: shows the notifications the server pushes ({"title", "body", "tag", "url", "id"}).
//
// A message can reach the browser twice: a campaign message whose sending was interrupted, then resent
// (the push service replaces a copy still waiting for the browser, by its Topic, but not one already
// delivered). So every notification has a tag: a browser shows one notification per tag, and a second copy
// replaces the first on the screen instead of stacking beside it, without sounding again (renotify false).
// A copy that arrives after the first was dismissed is shown again, but silently: the ids of the messages
// shown lately are remembered (the last MAX_REMEMBERED, in the Cache API), and the id is the same for every
// copy of one message.
const SHOWN = "tallypass-shown-v1";
const MAX_REMEMBERED = 200;

async function shownBefore(id) {
  if (!id || !self.caches) return false;
  try {
    const cache = await caches.open(SHOWN);
    const key = new Request(new URL("/__shown/" + encodeURIComponent(id), self.location.origin).href);
    if (await cache.match(key)) return true;
    await cache.put(key, new Response(String(Date.now())));
    const keys = await cache.keys();  // oldest first
    await Promise.all(keys.slice(0, Math.max(0, keys.length - MAX_REMEMBERED)).map((k) => cache.delete(k)));
  } catch (error) { /* storage refused: the notification is shown as usual */ }
  return false;
}

async function show(data) {
  const again = await shownBefore(data.id);
  return self.registration.showNotification(data.title || "", {
    body: data.body || "", tag: data.tag || undefined, renotify: false, silent: again,
    data: {url: data.url || "/"},
  });
}

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (error) { data = {body: event.data.text()}; }
  event.waitUntil(show(data));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url || "/"));
});
