"""The card page's web-push opt-in (app/static/card.js) in headless Chromium, with one browser and two cards.

Chromium cannot reach a real push service here, so the page's ``PushManager`` is replaced before the page
loads by a stand-in that behaves as a browser's does: one subscription per service worker, ``subscribe()``
returns the existing one, ``unsubscribe()`` ends it and the next ``subscribe()`` makes a new one. Everything
else is real: the page, its script, the server's answers (409 for a subscription another card holds).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from app.database import SESSIONS
from app.loyalty import enrollment
from app.models import WebPushSubscription
from tests.browser.conftest import add_cafe, wait_for_service_worker

pytestmark = [pytest.mark.browser, pytest.mark.committing]


def _browser_subscription(n: int) -> dict[str, Any]:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    b64 = lambda data: base64.urlsafe_b64encode(data).decode().rstrip("=")  # noqa: E731
    return {"endpoint": f"https://fcm.googleapis.com/fcm/send/browser-{n}", "expirationTime": None,
            "keys": {"p256dh": b64(point), "auth": b64(bytes([n]) * 16)}}


STAND_IN = """
(() => {
  // The browser's push state outlives a page, as a real subscription does: kept in sessionStorage.
  const made = %s;
  const load = (name, fallback) => JSON.parse(sessionStorage.getItem("stand-in-" + name) || fallback);
  const save = (name, value) => sessionStorage.setItem("stand-in-" + name, JSON.stringify(value));
  const log = (line) => save("log", [...load("log", "[]"), line]);
  function wrap(json) {
    return {endpoint: json.endpoint, toJSON: () => json,
            unsubscribe: async () => { log("unsubscribe " + json.endpoint); save("current", null); return true; }};
  }
  PushManager.prototype.getSubscription = async function () {
    const current = load("current", "null");
    return current === null ? null : wrap(current);
  };
  PushManager.prototype.subscribe = async function () {
    if (load("current", "null") === null) {
      const next = load("next", "0");
      save("current", made[next]);
      save("next", next + 1);
      log("subscribe " + made[next].endpoint);
    }
    return wrap(load("current", "null"));
  };
})();
"""


def test_one_browser_moves_its_notifications_to_a_second_card_only_by_subscribing_afresh(
        committing_app: Any, live_server: str, chromium: Any, tmp_path: Path) -> None:
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        program = add_cafe(session)
        first = enrollment.enrol(session, program=program, phone="+37369000001", name="Ana").card
        second = enrollment.enrol(session, program=program, phone="+37369000002", name="Ion").card
        tokens = {"first": first.page_token, "second": second.page_token}
        customers = {"first": first.customer_id, "second": second.customer_id}
    made = [_browser_subscription(1), _browser_subscription(2)]
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    context.add_init_script(STAND_IN % json.dumps(made))
    page = context.new_page()

    def open_card(name: str) -> None:
        page.goto(f"{live_server}/c/{tokens[name]}")
        wait_for_service_worker(page)
        page.wait_for_selector("#push:not([hidden])")

    def turn_on() -> None:
        page.get_by_role("button", name="Notify me in this browser").click()
        page.locator("#push-state", has_text="Notifications are on").wait_for()  # (no wait_for_function: CSP)
        assert page.locator("#push-state").inner_text() == "Notifications are on in this browser."

    open_card("first")
    turn_on()
    open_card("second")  # the browser's subscription is the first card's: the button is offered
    assert page.get_by_role("button", name="Notify me in this browser").is_visible()
    turn_on()
    page.screenshot(path=str(tmp_path / "second-card-push-on.png"), full_page=True)
    log = page.evaluate("JSON.parse(sessionStorage.getItem('stand-in-log'))")
    open_card("first")  # no longer this card's: offered again, not claimed "on"
    assert page.get_by_role("button", name="Notify me in this browser").is_visible()
    assert page.locator("#push-state").inner_text() == ""
    assert log == [f"subscribe {made[0]['endpoint']}", f"unsubscribe {made[0]['endpoint']}",
                   f"subscribe {made[1]['endpoint']}"]
    with factory() as session:
        owners = dict(session.execute(select(WebPushSubscription.endpoint, WebPushSubscription.customer_id)).all())
    assert owners == {made[0]["endpoint"]: customers["first"], made[1]["endpoint"]: customers["second"]}
