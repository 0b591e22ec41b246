// The till's service worker (scope /till/): keeps the app's shell files so the till opens without a network,
// and then shows the page that says so. It never answers a call to /till/api/ from a cache and never keeps a
// request to send later: a purchase is recorded while the cashier watches, or not at all.
const SHELL = "tallypass-till-v1";
const OFFLINE = "/till/offline";
const FILES = [
  OFFLINE,
  "/static/till/till.css",
  "/static/till/till.js",
  "/static/vendor/jsQR.js",
  "/static/till/icon-192.png",
  "/static/till/icon-512.png",
  "/till/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("tallypass-till-") && n !== SHELL)
      .map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/till/api/")) {
    return;  // the network's answer, or the network's failure, as it is
  }
  if (request.mode === "navigate") {
    // The page itself always from the network (it carries the signed-in session); without one, the offline page.
    event.respondWith(fetch(request).catch(() => caches.match(OFFLINE)));
    return;
  }
  if (FILES.includes(url.pathname)) {
    // Shell files: the network first (a new version shows at once), the copy when there is no network.
    event.respondWith(fetch(request).then((response) => {
      if (response.ok) {
        const copy = response.clone();
        caches.open(SHELL).then((cache) => cache.put(url.pathname, copy));
      }
      return response;
    }).catch(() => caches.match(url.pathname)));
  }
});
