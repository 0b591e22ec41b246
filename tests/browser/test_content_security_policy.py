"""The Content Security Policy in a real browser (issue 17, §3.8): headless Chromium opens the pages a shopper
and a marketer see, uses what their scripts drive (the card page's web-push opt-in and delete form, the
poster's print button, the dashboard's charts, previews and live counts), and the policy reports no
violation: every ``securitypolicyviolation`` event and every console error is collected. A control injects
an inline script, to show a violation would be caught. Screenshots go to the test's folder."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.database import SESSIONS
from app.loyalty import enrollment, ledger
from app.merchants.stores import create_store
from app.merchants.users import create_user
from app.segments import rfm
from tests.browser.conftest import PHONE, add_cafe, sign_in, submit_sign_in, wait_for_service_worker
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]

WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const what = e.violatedDirective + " " + (e.blockedURI || "inline");
  window.__violations.push(what);
  window.reportViolation(document.location.pathname + ": " + what);
});
"""


def _seed(factory: Any) -> dict[str, Any]:
    with factory.begin() as session:
        program = add_cafe(session, silver=True, logo_text="Cafea & Co.", currency="MDL", background_color="#0F766E",
                           point_value=Decimal("1.00"))
        store = create_store(session, program=program, name="Centru", latitude=47.0245, longitude=28.8322)
        card = enrollment.enrol(session, program=program, phone="+37369123456", name="Ana Popescu",
                                consents={"sms": True}).card
        ledger.record_purchase(session, store=store, card=card, receipt_id="r-1", amount=Decimal("400"))
        rfm.recompute(session, program=program)
        create_user(session, email="admin@cafea.test", password=PASSWORD, role="admin")
        return {"token": card.page_token, "store_id": store.id}


class Watcher:
    """A page's policy violations (reported from every document it loads) and console errors."""

    def __init__(self, page: Any) -> None:
        self.page, self.seen, self.errors = page, [], []
        page.expose_function("reportViolation", lambda what: self.seen.append(what))
        page.add_init_script(WATCH)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)

    def visit(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_load_state("networkidle")

    def violations(self) -> list[str]:
        return self.seen + [e for e in self.errors if "Content Security Policy" in e or "Refused to" in e]


def test_pages_run_their_scripts_and_styles_with_no_violation(committing_app: Any, live_server: str, chromium: Any,
                                                              tmp_path: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    seeded = _seed(committing_app.extensions[SESSIONS])
    # A shopper on a phone.
    phone = chromium.new_context(**PHONE, locale="en-US")
    phone.grant_permissions(["notifications"], origin=live_server)
    shopper = Watcher(phone.new_page())
    shopper.visit(f"{live_server}/join/cafea")
    assert shopper.page.locator("header.top").evaluate("e => getComputedStyle(e).backgroundColor") == (
        "rgb(15, 118, 110)"), "the programme's colour (a nonce'd <style>) applies"
    shopper.page.screenshot(path=str(tmp_path / "join.png"), full_page=True)

    shopper.visit(f"{live_server}/join/cafea/poster")
    assert shopper.page.locator("img.qr").evaluate("e => e.naturalWidth") > 0, "the QR code shows"
    shopper.page.evaluate("window.print = () => { document.documentElement.dataset.printed = 'yes'; }")
    shopper.page.click("#print-poster")
    assert shopper.page.evaluate("document.documentElement.dataset.printed") == "yes"
    shopper.page.screenshot(path=str(tmp_path / "poster.png"), full_page=True)

    shopper.visit(f"{live_server}/c/{seeded['token']}")
    page = shopper.page
    wait_for_service_worker(page)
    assert page.locator(".progress > span").evaluate("e => e.getBoundingClientRect().width") > 0, (
        "the progress bar's width (a nonce'd <style>) applies")
    page.click("#push-on")  # card.js subscribes; headless Chromium has no push service, so it says why
    page.wait_for_selector("#push-state:not(:empty)")
    page.screenshot(path=str(tmp_path / "card.png"), full_page=True)
    card_url = page.url

    # A marketer on a laptop.
    laptop = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    marketer = Watcher(laptop.new_page())
    sign_in(marketer.page, live_server, "admin@cafea.test")
    for path, ready in (("/dashboard/", "canvas"), ("/dashboard/programme?program=cafea", "#design-form"),
                        (f"/dashboard/stores/{seeded['store_id']}", "main"), ("/dashboard/tokens", "main"),
                        ("/dashboard/segments/new?program=cafea", '#segment-count[data-state="ok"]'),
                        ("/dashboard/segments/rfm?program=cafea", "canvas"),
                        ("/dashboard/campaigns/new?program=cafea", "main"),
                        ("/dashboard/customers?program=cafea", "main")):
        marketer.visit(live_server + path)
        marketer.page.wait_for_selector(ready)
        name = path.strip("/").split("?")[0].replace("/", "-") or "overview"
        marketer.page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    assert marketer.violations() == []

    # Back on the phone: the delete form posts (form-action 'self') and the error page is styled.
    page.goto(card_url)
    page.click("summary")  # "Delete my account"
    page.check("#confirm")
    page.get_by_role("button", name="Delete my account").click()
    page.wait_for_url("**notice=erased")
    assert "Your account is deleted." in page.content()
    page.screenshot(path=str(tmp_path / "card-erased.png"), full_page=True)
    shopper.visit(f"{live_server}/c/no-such-card")
    assert page.locator("main").evaluate("e => getComputedStyle(e).textAlign") == "center", (
        "the error page's stylesheet applies")
    assert shopper.violations() == []

    # Wrong passwords: the sign-in form says how long to wait.
    guesser = Watcher(chromium.new_context(viewport={"width": 1280, "height": 900}).new_page())
    for n in range(6):
        guesser.visit(f"{live_server}/dashboard/login")
        submit_sign_in(guesser.page, "admin@cafea.test", f"guess {n}")
        guesser.page.wait_for_load_state()
    # The wait is 30 s from the last failure; a loaded machine may take a second or two to render the page.
    assert re.search(r"Try again in (30|29|28) seconds\.", guesser.page.locator("#password-error").inner_text())
    guesser.page.screenshot(path=str(tmp_path / "sign-in-held.png"), full_page=True)

    # The control: an inline script is refused, and the watcher sees it.
    marketer.page.evaluate("""() => { const s = document.createElement("script");
                                      s.textContent = "window.__ran = 1"; document.body.append(s); }""")
    for _ in range(100):
        if marketer.seen:
            break
        marketer.page.wait_for_timeout(50)
    assert marketer.page.evaluate("window.__ran") is None
    assert any("script-src" in v for v in marketer.seen), marketer.seen


def test_browser_tests_do_not_wait_with_evaluated_strings() -> None:
    """Playwright's wait_for_function polls by evaluating a string in the page, which the pages' CSP refuses
    ('unsafe-eval'): such a wait fails or flakes. Wait on a selector or a locator instead."""
    offenders = [path.name for path in Path(__file__).parent.glob("*.py")
                 if "wait_for_function(" in path.read_text().replace('"wait_for_function("', "")]
    assert offenders == []
