"""The cases of malformed input the outside review reported as 500s, each on the surface it was found on:
now a 400 problem document (or, on pages, the error page or the form's own message). The walk over every
route is in test_malformed_input.py; the JSON limits are unit-tested at the end."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.web.bodies import MAX_DEPTH, MalformedJSON, loads
from tests.web.api_client import call
from tests.web.dashboard_client import csrf, sign_in_as

HUGE = "9" * 4301


def assert_malformed(response: Any, code: str = "malformed-input") -> dict[str, Any]:
    assert response.status_code == 400, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith(code)
    return response.json


@pytest.fixture
def demo(make_program: Any, make_card: Any, db_session: Session) -> Any:
    program = make_program(slug="demo")
    card = make_card(program, phone="+37369000001", balance=10)
    db_session.commit()
    return card


def test_a_nul_in_the_query_string_is_refused(client: FlaskClient, token: str, demo: Any) -> None:
    problem = assert_malformed(call(client, "GET", "/customers?program=demo&q=a%00b", token))
    assert problem["errors"] == [{"field": "query parameter q", "message": "must not contain NUL characters"}]
    assert_malformed(call(client, "GET", "/campaigns?program=%00", token))
    assert_malformed(call(client, "GET", f"/customers/{demo.customer_id}/ledger?program=de%00mo", token))
    assert_malformed(call(client, "GET", "/customers/export.csv?program=demo%00", token))
    assert call(client, "GET", "/customers?program=demo&q=a", token).status_code == 200


def test_a_nul_in_a_path_or_a_header_is_refused(client: FlaskClient, demo: Any) -> None:
    assert_malformed(client.get("/api/v1/pos/cards/a%00b", headers={"Tallypass-Key": "k", "Tallypass-Signature": "x"}))
    assert_malformed(client.get("/api/v1/pos/cards/abc", headers={"Tallypass-Key": "a\x00b",
                                                                   "Tallypass-Signature": "t=1,v1=00"}))
    page = client.get("/join/de%00mo")  # a page: the error page, not a traceback
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "NUL" in page.get_data(as_text=True)


def test_a_nul_in_a_json_body_or_a_csv_file_is_refused(client: FlaskClient, token: str, demo: Any) -> None:
    problem = assert_malformed(call(client, "POST", f"/customers/{demo.customer_id}/adjustments", token,
                                    json={"program": "demo", "points": 5, "reason": "a\x00b"}), "malformed-json")
    assert "NUL" in problem["detail"]
    assert_malformed(call(client, "POST", "/campaigns", token, json={
        "program": "demo", "name": "x\x00", "channels": ["sms"], "variants": [{"name": "A", "body": "Hi"}]}),
        "malformed-json")
    assert_malformed(call(client, "POST", "/customers/import?program=demo", token,
                          data=b"phone,name\n+37369000009,a\x00b\n", content_type="text/csv"))


def test_integers_of_more_than_4300_digits_are_refused(client: FlaskClient, token: str, demo: Any) -> None:
    assert_malformed(call(client, "GET", f"/customers?program=demo&page={HUGE}", token))
    body = f'{{"program": "demo", "points": {HUGE}, "reason": "r"}}'.encode()
    assert_malformed(call(client, "POST", f"/customers/{demo.customer_id}/adjustments", token, data=body,
                          content_type="application/json"), "malformed-json")


def test_json_nested_900_deep_is_refused(client: FlaskClient, token: str, demo: Any) -> None:
    deep = "[" * 900 + "]" * 900
    body = f'{{"program": "demo", "rules": {{"all": {deep}}}}}'.encode()
    problem = assert_malformed(call(client, "POST", "/segments/preview", token, data=body,
                                    content_type="application/json"), "malformed-json")
    assert "nested" in problem["detail"] or "recursion" in problem["detail"]


def test_a_lone_surrogate_is_refused(client: FlaskClient, token: str, demo: Any) -> None:
    body = b'{"program": "demo", "points": 5, "reason": "\\ud800"}'
    assert_malformed(call(client, "POST", f"/customers/{demo.customer_id}/adjustments", token, data=body,
                          content_type="application/json"), "malformed-json")


def test_crlf_in_next_does_not_reach_the_location_header(client: FlaskClient, db_session: Session, demo: Any
                                                         ) -> None:
    sign_in_as(client, db_session, "admin")
    response = client.get("/dashboard/login?next=/dashboard%0D%0ASet-Cookie:%20x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/" and "Set-Cookie: x" not in str(response.headers)


def test_crlf_in_next_after_signing_in(client: FlaskClient, db_session: Session) -> None:
    from app.merchants.users import create_user
    from tests.web.dashboard_client import PASSWORD

    create_user(db_session, email="a@shop.test", password=PASSWORD, role="admin")
    db_session.commit()
    response = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": "a@shop.test",
                                                     "password": PASSWORD, "next": "/dashboard\r\nX: y"})
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard/"


def test_a_form_with_a_nul_shows_an_error_page(client: FlaskClient, db_session: Session) -> None:
    response = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": "a\x00@shop.test",
                                                     "password": "x"})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "NUL" in response.get_data(as_text=True)


def test_deep_json_typed_into_the_segment_form_is_a_message_beside_the_field(
        client: FlaskClient, db_session: Session, demo: Any) -> None:
    _user, token = sign_in_as(client, db_session, "marketer")
    deep = "[" * 900 + "]" * 900
    response = client.post("/dashboard/segments/new", data={"csrf_token": token, "name": "Deep", "kind": "rules",
                                                            "rules": f'{{"all": {deep}}}'})
    assert response.status_code in (400, 422), response.status_code
    assert "not valid JSON" in response.get_data(as_text=True)


# ------------------------------------------------------------------------------------------ the JSON loader


@pytest.mark.parametrize("text", [
    "[" * 900 + "]" * 900,  # Python's json would recurse; the depth limit answers first
    "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    HUGE,
    str(2**63),
    "-" + str(2**63 + 1),
    "1e999",
    "NaN",
    '"\\ud800"',
    '{"a": "x\\u0000"}',
    '{"a\\u0000": 1}',
    b"\xff",
])
def test_the_json_loader_refuses(text: str | bytes) -> None:
    with pytest.raises(MalformedJSON):
        loads(text)


def test_the_json_loader_reads_what_json_reads() -> None:
    ok = {"a": [1, -2, 2**63 - 1, -(2**63), 1.5, True, None, "é😀"], "b": {"c": "\ud83d\ude00"}}
    text = json.dumps(ok)
    assert loads(text) == json.loads(text)
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(nested) == json.loads(nested)
