"""The till in Chromium, as a cashier uses it: the card's QR code read through the camera (Chromium's fake camera
playing a video of the code, made here as YUV4MPEG2 frames from a segno rendering of the card's barcode), a
purchase with points confirmed and recorded (checked in the database and on screen), the refusals shown beside
their fields, and the state with no network: nothing recorded, then one purchase for the retry. Screenshots at
a phone's and a tablet's size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import segno
from sqlalchemy import select

from app.database import SESSIONS
from app.loyalty import enrollment, ledger
from app.merchants.stores import create_store
from app.merchants.users import create_user
from app.models import AuditEvent, Card, LedgerEntry, Purchase
from tests.browser.conftest import (
    CHROMIUM,
    PHONE,
    add_cafe,
    browser_available,
    page_errors,
    playwright,
    submit_sign_in,
    wait_for_service_worker,
)
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]

WIDTH, HEIGHT = 640, 480
TABLET: dict[str, Any] = {"viewport": {"width": 1024, "height": 768}, "device_scale_factor": 1, "has_touch": True}


def _seed(factory: Any) -> dict[str, Any]:
    with factory.begin() as session:
        program = add_cafe(session, currency="MDL", point_value=Decimal("1.00"), redeem_cap_percent=Decimal("50"),
                           max_purchase_amount=Decimal("500.00"))
        store = create_store(session, program=program, name="Centru")
        card = enrollment.enrol(session, program=program, phone="+37369120001", name="Ana Maria Popescu").card
        ledger.grant_bonus(session, card=card, points=40, reason="welcome")
        create_user(session, email="ion@cafea.test", password=PASSWORD, role="cashier", store_ids=[store.id])
        return {"barcode": card.barcode, "card_id": card.id, "store_id": store.id}


def write_y4m(path: Path, text: str, frames: int = 15) -> None:
    """A short uncompressed video (YUV4MPEG2, 4:2:0) of ``text``'s QR code, black on white, for Chromium's fake
    camera (``--use-file-for-fake-video-capture``), which plays it in a loop. A full QR code, as the card page
    and the wallet passes show (``segno.make`` would choose a Micro QR code for 13 digits, which phones' and
    browsers' readers do not read)."""
    rows = [list(row) for row in segno.make_qr(text, error="m").matrix_iter(scale=8, border=4)]
    size = len(rows)
    assert size <= HEIGHT, size
    top, left = (HEIGHT - size) // 2, (WIDTH - size) // 2
    luma = bytearray([235]) * (WIDTH * HEIGHT)  # white
    for y, row in enumerate(rows):
        start = (top + y) * WIDTH + left
        luma[start:start + size] = bytes(16 if dark else 235 for dark in row)
    chroma = bytes([128]) * (WIDTH // 2 * HEIGHT // 2)  # no colour
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + bytes(luma) + chroma + chroma)


@contextmanager
def camera_browser(video: Path) -> Iterator[Any]:
    """Chromium whose camera shows ``video``, and which grants the camera without asking."""
    if not browser_available():
        pytest.skip(f"needs {CHROMIUM} and playwright (installed by .ci/run)")
    with playwright()() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-dev-shm-usage", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={video}"])
        try:
            yield browser
        finally:
            browser.close()


def open_till(browser: Any, live_server: str, device: dict[str, Any]) -> tuple[Any, Any, list[str]]:
    """A new context at ``device``'s size, signed in as the cashier, with the till open."""
    context = browser.new_context(**device, locale="en-GB")
    context.grant_permissions(["camera"], origin=live_server)
    page = context.new_page()
    errors = page_errors(page)
    page.goto(f"{live_server}/dashboard/login?next=/till/")
    with page.expect_navigation():
        submit_sign_in(page, "ion@cafea.test", PASSWORD)
    page.goto(f"{live_server}/till/")
    page.wait_for_selector("#till[data-ready='true']", state="attached")
    return context, page, errors


def find_by_number(page: Any, barcode: str) -> None:
    page.fill("#ref", barcode)
    page.locator("#find button[type=submit]").click()  # "Find", in the page's language
    page.locator("#customer").wait_for()


def purchases(factory: Any, card_id: int) -> list[tuple[str, Decimal, int, int]]:
    with factory() as session:
        return [(p.receipt_id, p.amount, p.redeemed_points, p.earned_points) for p in session.scalars(
            select(Purchase).where(Purchase.card_id == card_id).order_by(Purchase.id))]


def test_a_cashier_scans_the_card_and_records_a_purchase(committing_app: Any, live_server: str, tmp_path: Path,
                                                         shots: Path) -> None:
    from playwright.sync_api import expect

    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    factory = committing_app.extensions[SESSIONS]
    shop = _seed(factory)
    video = tmp_path / "card-qr.y4m"
    write_y4m(video, shop["barcode"])

    with camera_browser(video) as browser:
        context, page, errors = open_till(browser, live_server, PHONE)
        page.screenshot(path=str(shots / "till-phone-start.png"))
        page.get_by_role("button", name="Scan the card").click()
        page.locator("#customer").wait_for(timeout=20_000)  # the camera read the code and the card was found
        assert page.locator("#till").get_attribute("data-decoder") in ("jsQR", "BarcodeDetector")
        assert page.input_value("#ref") == shop["barcode"]
        assert page.locator("#c-name").inner_text() == "Ana P."
        assert page.locator("#c-balance").inner_text() == "Points: 40"
        assert page.locator("#c-tier").inner_text() == "Bronze"
        assert page.locator("#c-cap").inner_text() == "Points may pay up to 50% of a purchase."

        page.fill("#amount", "30")
        page.locator("#max-hint", has_text="Most points for this amount: 15 (−MDL\u00a015.00).").wait_for()
        page.fill("#redeem_points", "16")  # over the cap: refused beside the field
        page.get_by_role("button", name="Review").click()
        error = page.locator("#redeem_points-error")
        error.wait_for()
        assert error.inner_text() == "At most 15 points can pay for this purchase."
        assert page.get_attribute("#redeem_points", "aria-invalid") == "true"
        page.screenshot(path=str(shots / "till-phone-over-cap.png"))

        page.get_by_role("button", name="Most").click()
        expect(page.locator("#redeem_points")).to_have_value("15")
        page.fill("#redeem_points", "10")
        page.get_by_role("button", name="Review").click()
        page.locator("#confirm").wait_for()
        summary = {k: page.locator(f"#q-{k}").inner_text() for k in ("amount", "redeemed", "discount", "due",
                                                                      "earned", "balance")}
        assert summary == {"amount": "MDL\u00a030.00", "redeemed": "10", "discount": "MDL\u00a010.00",
                           "due": "MDL\u00a020.00",
                           "earned": "+1", "balance": "31"}
        assert purchases(factory, shop["card_id"]) == []  # the quote records nothing
        page.screenshot(path=str(shots / "till-phone-confirm.png"))

        page.get_by_role("button", name="Confirm").dblclick()  # a double tap records once
        page.locator("#done").wait_for()
        assert page.locator("#d-balance").inner_text() == "Points: 31"
        receipt = page.locator("#d-receipt").inner_text()
        assert receipt.startswith("till-")
        page.screenshot(path=str(shots / "till-phone-done.png"))

        assert purchases(factory, shop["card_id"]) == [(receipt, Decimal("30.00"), 10, 1)]
        with factory() as session:
            card = session.get(Card, shop["card_id"])
            assert card is not None and card.balance == 31
            kinds = sorted((e.kind, e.points) for e in session.scalars(
                select(LedgerEntry).where(LedgerEntry.card_id == card.id)))
            assert kinds == [("bonus", 40), ("earn", 1), ("redeem", -10)]
            audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "till.purchase")).one()
            assert audited.actor == "ion@cafea.test" and audited.details["receipt_id"] == receipt

        # An unknown card and an amount over the programme's largest: clear messages, nothing recorded.
        page.get_by_role("button", name="Next customer").click()
        page.fill("#ref", "1234567890128")
        page.get_by_role("button", name="Find").click()
        page.locator("#ref-error").wait_for()
        assert page.locator("#ref-error").inner_text() == "No card with this number or phone in this programme."
        find_by_number(page, shop["barcode"])
        page.fill("#amount", "500.01")
        page.get_by_role("button", name="Review").click()
        page.locator("#amount-error").wait_for()
        assert page.locator("#amount-error").inner_text() == (
            "This amount is over the most this programme accepts for one purchase.")

        # A refund by the receipt shown after the purchase.
        page.get_by_role("button", name="Refund", exact=True).first.click()
        page.fill("#receipt_id", receipt)
        page.fill("#refund-amount", "30.00")
        page.locator("#do-refund").click()
        page.locator("#refund-done").wait_for()
        assert page.locator("#r-balance").inner_text() == "Points: 40"  # 10 points given back, 1 taken back
        context.close()

        context, page, errors = open_till(browser, live_server, TABLET)
        find_by_number(page, shop["barcode"])
        page.fill("#amount", "24.50")
        page.locator("#max-hint", has_text="Most points for this amount: 12 ").wait_for()
        page.screenshot(path=str(shots / "till.png"))
        page.get_by_role("link", name="RU").click()  # the till in Russian
        page.wait_for_selector("#till[data-ready='true']", state="attached")
        assert page.locator("#identify-title").inner_text() == "Кто покупатель?"
        find_by_number(page, shop["barcode"])
        assert page.locator("#c-balance").inner_text() == "Баллы: 40"
        page.fill("#amount", "700")
        page.get_by_role("button", name="Проверить").click()
        page.locator("#amount-error").wait_for()
        assert page.locator("#amount-error").inner_text() == (
            "Сумма больше максимальной суммы одной покупки в этой программе.")
        page.screenshot(path=str(shots / "till-ru.png"))
        assert errors == []
        context.close()


def test_with_no_network_nothing_is_recorded_and_the_retry_records_once(committing_app: Any, live_server: str,
                                                                        tmp_path: Path, shots: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False
    factory = committing_app.extensions[SESSIONS]
    shop = _seed(factory)
    video = tmp_path / "blank.y4m"
    write_y4m(video, "nothing")

    with camera_browser(video) as browser:
        context, page, _errors = open_till(browser, live_server, PHONE)
        wait_for_service_worker(page)
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        find_by_number(page, shop["barcode"])
        page.fill("#amount", "12.00")
        page.get_by_role("button", name="Review").click()
        page.locator("#confirm").wait_for()

        context.set_offline(True)
        page.get_by_role("button", name="Confirm").click()
        page.locator("#offline").wait_for()
        assert page.locator("#offline").inner_text() == "No network — nothing was recorded."
        assert page.locator("#confirm-error").inner_text() == "No network — nothing was recorded."
        assert page.locator("#retry").is_visible()
        # Only "Try again" goes on: no new attempt may record the purchase a second time.
        assert not page.locator("#do-confirm").is_visible() and not page.locator("#back").is_visible()
        page.screenshot(path=str(shots / "till-phone-offline.png"))
        assert purchases(factory, shop["card_id"]) == []

        context.set_offline(False)
        page.get_by_role("button", name="Try again").click()
        page.locator("#done").wait_for()
        page.get_by_role("button", name="Try again").wait_for(state="hidden")
        [(receipt, amount, _redeemed, _earned)] = purchases(factory, shop["card_id"])
        assert (receipt, amount) == (page.locator("#d-receipt").inner_text(), Decimal("12.00"))

        # Opened again with no network: the service worker's page says so.
        context.set_offline(True)
        page.goto(f"{live_server}/till/")
        heading = page.locator("h1")
        assert heading.inner_text() == "No network — nothing was recorded."
        page.screenshot(path=str(shots / "till-phone-offline-shell.png"))
        context.set_offline(False)
        assert len(purchases(factory, shop["card_id"])) == 1
        context.close()
