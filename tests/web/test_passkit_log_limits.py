"""``POST /passkit/v1/log`` takes posts from anyone (Apple's devices report errors there without
credentials), so it is limited (issue 17, §3.8): per client address, in body size, and in what one post may
write into our log."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

LOG = "/passkit/v1/log"


def test_log_posts_are_limited_per_address(app_with: Callable[..., Flask]) -> None:
    client = app_with(form_rate_limit="2/minute").test_client()
    statuses = [client.post(LOG, json={"logs": ["error"]}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = client.post(LOG, json={"logs": ["error"]})
    assert refused.mimetype == "application/problem+json" and 1 <= int(refused.headers["Retry-After"]) <= 60
    other = client.post(LOG, json={"logs": ["error"]}, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert other.status_code == 200
    # The sign-up form's limit is counted apart: device logs do not use it up.
    assert client.get("/join/nothing").status_code == 404


def test_a_big_log_body_is_refused(client: FlaskClient) -> None:
    response = client.post(LOG, json={"logs": ["x" * 9000, "y" * 9000]})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"


def test_one_post_writes_a_bounded_amount_to_the_log(client: FlaskClient, caplog: pytest.LogCaptureFixture
                                                     ) -> None:
    entries = [f"entry {n} " + "z" * 1200 for n in range(12)]
    with caplog.at_level(logging.WARNING, logger="app.web.passkit"):
        assert client.post(LOG, json={"logs": entries}).status_code == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "app.web.passkit"]
    assert len(lines) == 11 and lines[-1] == "wallet device log: 2 more entries not logged"
    assert all(len(line) < 560 and line.endswith(" […]") for line in lines[:10])
    assert sum(len(line) for line in lines) < 6000
