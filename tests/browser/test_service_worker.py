"""The service worker (app/static/sw.js) in headless Chromium, with real push events: Chrome's DevTools
protocol delivers a push message to the registered worker (``ServiceWorker.deliverPushMessage``), as the
browser does when its push service hands one over, and the test reads the notifications the worker shows.

The payloads are the campaign channel's own (``PushChannel._payload``), the same for every copy of one
delivery (tests/integration/test_campaign_resend.py shows a resend sends exactly that again). A second copy
replaces the first on the screen (one notification per tag), and one that arrives after the first was
dismissed is shown again, silently."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from app.campaigns.channels import PushChannel
from app.campaigns.templating import Rendered
from app.database import SESSIONS
from app.loyalty import enrollment
from app.models import Delivery
from tests.browser.conftest import add_cafe, wait_for_service_worker

pytestmark = [pytest.mark.browser, pytest.mark.committing]

NOTIFICATIONS = ("navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns => "
                 "ns.map(n => ({tag: n.tag, title: n.title, body: n.body, silent: n.silent})))")


def _payload(delivery_id: int, campaign_id: int, body: str) -> str:
    delivery = Delivery(id=delivery_id, campaign_id=campaign_id)
    return json.dumps(PushChannel._payload(delivery, None, Rendered(title="Cafea", body=body)))  # type: ignore[arg-type]


def test_a_second_copy_of_a_campaign_push_replaces_the_first(committing_app: Any, live_server: str,
                                                             chromium: Any) -> None:
    with committing_app.extensions[SESSIONS].begin() as session:
        program = add_cafe(session)
        token = enrollment.enrol(session, program=program, phone="+37369000001", name="Ana").card.page_token
    context = chromium.new_context(locale="en-US")
    context.grant_permissions(["notifications"], origin=live_server)
    page = context.new_page()
    devtools = context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    devtools.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    devtools.send("ServiceWorker.enable")
    page.goto(f"{live_server}/c/{token}")
    wait_for_service_worker(page)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    deadline = time.monotonic() + 10
    while not registrations and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    registration = next(r["registrationId"] for r in registrations if not r.get("isDeleted"))

    def deliver(data: str, expected: list[tuple[str, bool]]) -> list[dict[str, Any]]:
        """Push ``data``; wait (up to 5 s) until the notifications shown are ``expected`` (tag, silent)."""
        devtools.send("ServiceWorker.deliverPushMessage",
                      {"origin": live_server, "registrationId": registration, "data": data})
        for _ in range(100):  # the worker shows it asynchronously
            shown = page.evaluate(NOTIFICATIONS)
            if sorted((n["tag"], n["silent"]) for n in shown) == expected:
                return shown
            page.wait_for_timeout(50)
        pytest.fail(f"shown: {page.evaluate(NOTIFICATIONS)}, expected {expected}")

    first = _payload(41, 7, "Double points this weekend")
    assert deliver(first, [("campaign-7", False)]) == [
        {"tag": "campaign-7", "title": "Cafea", "body": "Double points this weekend", "silent": False}]
    # The resent copy arrives too: it replaces the first (still one notification), without a sound.
    deliver(first, [("campaign-7", True)])
    page.evaluate("navigator.serviceWorker.ready.then(r => r.getNotifications())"
                  ".then(ns => ns.forEach(n => n.close()))")  # the customer dismisses it
    assert page.evaluate(NOTIFICATIONS) == []
    # A late copy shows again, silently. Chromium sometimes drops a notification shown under a tag it has just
    # closed (showNotification resolves, getNotifications stays empty; about 1 in 10 here, with or without a
    # pause): the copy is pushed again, at most twice more. Each push must still show it silently, or none counts.
    for attempt in range(3):
        devtools.send("ServiceWorker.deliverPushMessage", {"origin": live_server, "registrationId": registration,
                                                           "data": first})
        for _ in range(40):
            shown = page.evaluate(NOTIFICATIONS)
            if shown:
                break
            page.wait_for_timeout(50)
        if shown:
            assert [(n["tag"], n["silent"]) for n in shown] == [("campaign-7", True)], (attempt, shown)
            break
    else:
        pytest.fail("a late copy after the notification was dismissed was never shown")
    other = _payload(42, 8, "A new offer")  # another campaign: its own notification, with a sound
    shown = deliver(other, [("campaign-7", True), ("campaign-8", False)])
    assert sorted((n["tag"], n["body"]) for n in shown) == [("campaign-7", "Double points this weekend"),
                                                           ("campaign-8", "A new offer")]
