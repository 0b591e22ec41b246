"""Rate limits and sign-in throttling do not switch off while Redis is down (issue 17, §3.8): the counts
fall back to the process's memory, Redis is retried every few seconds (not on every request, each of which
could otherwise wait out a timeout), the outage is logged once, and the counts go back to Redis when it
answers again."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from app.web.ratelimit import EXTENSION, LOG_EVERY_SECONDS, RETRY_SECONDS, Counters
from tests.conftest import PosClient
from tests.fakes.tcp_proxy import TcpProxy
from tests.web.test_sign_in_throttle import cheap_hashes  # noqa: F401 (a fixture)

PASSWORD = "correct horse battery"  # noqa: S105 (a test account)


def _redis_url() -> str:
    return os.environ.get("TALLYPASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


def _redis() -> Any:
    import redis

    client = redis.Redis.from_url(_redis_url(), socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("needs Redis at " + _redis_url())
    return client


def _frozen(app: Flask) -> tuple[Counters, list[float]]:
    """The app's counters, with a clock the test moves."""
    counters: Counters = app.extensions[EXTENSION].counters
    now = [1000.0]
    counters.clock = lambda: now[0]
    return counters, now


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "app.web.ratelimit"]


def test_limits_bite_when_redis_is_at_a_dead_port(app_with: Callable[..., Flask], make_program: Callable[..., Any],
                                                 make_store: Callable[..., Any], make_card: Callable[..., Any],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    app = app_with(broker_url="redis://127.0.0.1:1/5", pos_rate_limit="3/minute", form_rate_limit="2/minute")
    counters, _ = _frozen(app)
    program = make_program()
    card = make_card(program)
    with caplog.at_level(logging.WARNING, logger="app.web.ratelimit"):
        pos = PosClient(app.test_client(), make_store(program))
        assert [pos.get(f"/cards/{card.barcode}").status_code for _ in range(4)] == [200, 200, 200, 429]
        client = app.test_client()
        assert [client.post("/passkit/v1/log", json={"logs": ["x"]}).status_code for _ in range(3)] == [200, 200, 429]
    assert counters.degraded
    lines = _outage_lines(caplog)
    assert len(lines) == 1 and "unreachable (ConnectionError)" in lines[0], lines  # once, not per request


@pytest.mark.usefixtures("cheap_hashes")
def test_sign_in_throttling_holds_when_redis_is_at_a_dead_port(app_with: Callable[..., Flask], db_session: Any
                                                               ) -> None:
    from app.merchants.users import create_user
    from tests.web.dashboard_client import csrf

    app = app_with(broker_url="redis://127.0.0.1:1/5")
    create_user(db_session, email="admin@shop.test", password=PASSWORD, role="admin")
    db_session.flush()
    client = app.test_client()

    def sign_in(password: str) -> int:
        return client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": "admin@shop.test",
                                                     "password": password}).status_code

    assert [sign_in(f"guess {n}") for n in range(6)] == [401] * 5 + [429]
    assert app.extensions[EXTENSION].counters.degraded


def test_limits_hold_through_a_redis_outage_and_return_to_redis(
        app_with: Callable[..., Flask], make_program: Callable[..., Any], make_store: Callable[..., Any],
        make_card: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    redis = _redis()
    redis.flushdb()
    db = _redis_url().rsplit("/", 1)[1]
    with TcpProxy((redis.connection_pool.connection_kwargs["host"], redis.connection_pool.connection_kwargs["port"])
                  ) as proxy, caplog.at_level(logging.WARNING, logger="app.web.ratelimit"):
        app = app_with(broker_url=f"redis://{proxy.address}/{db}", pos_rate_limit="3/minute")
        counters, now = _frozen(app)
        program = make_program()
        card = make_card(program)
        pos = PosClient(app.test_client(), make_store(program))

        def lookups(n: int) -> list[int]:
            return [pos.get(f"/cards/{card.barcode}").status_code for _ in range(n)]

        assert lookups(2) == [200, 200]
        assert redis.keys("LIMITS:*"), "the counts are in Redis"

        proxy.cut()  # Redis is gone: connections refused
        assert lookups(4) == [200, 200, 200, 429]  # counted in memory: the limit still bites
        assert counters.degraded and len(_outage_lines(caplog)) == 1

        proxy.stall()  # now Redis hangs instead: each try waits out the timeout
        now[0] += RETRY_SECONDS
        tries = proxy.connections
        assert lookups(10) == [429] * 10
        assert proxy.connections == tries + 1, "one try per period, not one per request"
        assert len(_outage_lines(caplog)) == 1, "no new line within the minute"
        now[0] += LOG_EVERY_SECONDS
        assert lookups(1) == [429]
        assert len(_outage_lines(caplog)) == 2 and "still unreachable after 65 s" in _outage_lines(caplog)[-1]

        proxy.restore()
        assert lookups(1) == [429]  # within the period, still in memory
        now[0] += RETRY_SECONDS
        assert lookups(2) == [200, 429]  # back in Redis, which had counted two
        assert not counters.degraded
        assert "reachable again" in _outage_lines(caplog)[-1] and len(_outage_lines(caplog)) == 3
    redis.flushdb()


def test_every_limit_counts_through_the_one_store_with_its_fallback(app: Flask) -> None:
    """What keeps a limit from failing open again: every limiter of the app counts through the ``Counters``
    above, and no other module builds counters of its own from the ``limits`` library."""
    import ast
    from pathlib import Path

    import app as app_package
    from app.web.ratelimit import Limiter, SignInThrottle

    limiters = [ext for ext in app.extensions.values() if isinstance(ext, Limiter | SignInThrottle)]
    assert len(limiters) >= 4
    assert len({id(limiter.counters) for limiter in limiters}) == 1
    assert isinstance(limiters[0].counters, Counters)

    root = Path(app_package.__file__).resolve().parent
    users = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            if any(name == "limits" or name.startswith("limits.") for name in names):
                users.add(path.relative_to(root).as_posix())
    assert users == {"web/ratelimit.py", "settings.py"}  # settings only parses limit strings
