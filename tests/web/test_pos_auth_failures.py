"""Failed POS authentication is limited per client address (issue 17, §3.8): a guesser's bad signatures and
unknown keys get 429 once the address has failed too often, while a correctly signed till behind the same
NAT address keeps working within its own key's limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from tests.conftest import PosClient
from tests.web.test_pos import assert_problem

SHOP_NAT = "192.0.2.10"  # a mall's NAT: the guesser and an honest till share it
ELSEWHERE = "198.51.100.20"


def at(app: Flask, address: str) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_failed_authentication_is_limited_per_address_but_a_valid_key_still_works(
        app_with: Callable[..., Flask], make_program: Callable[..., Any], make_store: Callable[..., Any],
        make_card: Callable[..., Any]) -> None:
    app = app_with(pos_auth_failure_limit="3/minute", pos_rate_limit="4/minute")
    program = make_program()
    card = make_card(program)
    url = f"/cards/{card.barcode}"
    guesser = at(app, SHOP_NAT)
    honest = PosClient(at(app, SHOP_NAT), make_store(program))
    forged = honest.headers(b"")
    forged["Tallypass-Signature"] = "t=1,v1=00"
    unknown = {**honest.headers(b""), "Tallypass-Key": "pk_no_such_key"}

    for _ in range(3):
        assert_problem(guesser.get(f"/api/v1/pos{url}", headers=forged), 401)
    for headers in (forged, unknown, {}):  # bad signature, unknown key, no headers at all
        response = guesser.get(f"/api/v1/pos{url}", headers=headers)
        body = assert_problem(response, 429, "rate-limited")
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert "failed authentications from this address" in body["detail"]

    # The honest till behind the same address is not held by the guesser, only by its own key's limit.
    assert [honest.get(url).status_code for _ in range(4)] == [200] * 4
    assert_problem(honest.get(url), 429, "rate-limited")
    # Another address's first failure is an ordinary 401.
    assert_problem(at(app, ELSEWHERE).get(f"/api/v1/pos{url}", headers=forged), 401, "signature-invalid")
