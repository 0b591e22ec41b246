"""The member import as a marketer sees it in headless Chromium: the upload answers at once with the import's
page, which reloads itself while a worker checks the lines and adds the members, and ends with the report.

The worker is played by the test (no broker here; the upload's queueing is held back) so that each stage can be
seen: waiting, halfway, done. Screenshots go to the test's folder (``make screenshots``: docs/screenshots/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.database import SESSIONS
from app.db import utcnow
from app.loyalty import enrollment, member_import
from app.merchants.users import create_user
from app.models import MemberImport, Program
from app.tasks import imports
from tests.browser.conftest import add_cafe, page_errors, sign_in
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]

MEMBERS = 600


def test_the_import_page_follows_the_job_until_its_report(committing_app: Any, live_server: str, chromium: Any,
                                                          shots: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        program = add_cafe(session)
        enrollment.enrol(session, program=program, phone="+37369999999", name="Already")
        create_user(session, email="maria@cafea.test", password=PASSWORD, role="marketer")
    queued: list[int] = []
    monkeypatch.setattr(imports.run_member_import, "delay", queued.append)  # the worker is the test, below
    csv_file = tmp_path / "members-from-the-old-programme.csv"
    csv_file.write_text("phone,name,points,consent_sms\n"
                        + "".join(f"+3736800{n:04d},Member {n},{n % 50},yes\n" for n in range(MEMBERS))
                        + "+37369999999,Already,,\n" + "not-a-phone,Nobody,,\n" + "+37368001234,Bad,ten,\n")
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
    errors = page_errors(page)
    sign_in(page, live_server, "maria@cafea.test")

    page.goto(f"{live_server}/dashboard/customers/import?program=cafea")
    page.set_input_files("#file", str(csv_file))
    page.get_by_label("import the valid lines, and show me the ones that were skipped").check()
    page.get_by_role("button", name="Check and import").click()
    page.wait_for_url("**/dashboard/customers/imports/*")
    [job_id] = queued
    assert page.get_by_role("heading", level=2).first.inner_text() == "Waiting for a worker…"
    assert "0 of 603 lines handled (0 %)" in page.locator("#import-progress-text").inner_text()
    page.screenshot(path=str(shots / "import-waiting.png"), full_page=True)

    # A worker checks the file and adds the first 250 members; the page shows it on its next reload.
    with factory.begin() as session:
        job = session.get(MemberImport, job_id, with_for_update=True)
        program = session.get(Program, job.program_id)
        job.state = "checking"
        members = member_import.check(session, job=job, program=program, region=None, now=utcnow())
        member_import.import_batch(session, job=job, program=program, members=members, now=utcnow())
    page.wait_for_selector('#import-progress[value="253"]', timeout=10_000)  # after a reload by itself
    assert page.get_by_role("heading", level=2).first.inner_text() == "Importing…"
    assert "253 of 603 lines handled (41 %)" in page.locator("#import-progress-text").inner_text()
    assert page.locator("#count-created").inner_text() == "250"
    assert page.locator("tr[data-issue]").count() == 3  # the problems are listed as soon as they are known
    page.screenshot(path=str(shots / "import-progress.png"), full_page=True)

    assert imports.run(factory, job_id, region=None) == "done"  # the worker goes on to the end
    page.wait_for_selector("#import-done", timeout=10_000)
    assert page.locator("#import-done").inner_text().startswith(
        f"Imported {MEMBERS} of 603 members into Cafea & Co. No welcome message was sent.")
    rows = page.locator("tr[data-issue]").all_inner_texts()
    assert [r.split("\t")[:2] for r in rows] == [["602", "phone"], ["603", "phone"], ["604", "points"]]
    assert page.locator('meta[http-equiv="refresh"]').count() == 0  # done: no more reloading
    page.screenshot(path=str(shots / "import-done.png"), full_page=True)
    assert not errors, errors
    with factory() as session:
        assert session.scalar(select(MemberImport.imported).where(MemberImport.id == job_id)) == MEMBERS
