"""Pooled connections that died while idle are replaced before a request sees them (no ping per request)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine, exc

from app.db import make_engine

pytestmark = pytest.mark.postgres


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def _kill(url: str, pid: int) -> None:
    libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def test_a_connection_killed_while_idle_is_replaced_at_checkout(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, ping_after_idle=0.0)  # every reuse counts as idle
    try:
        first = _backend_pid(engine)
        _kill(pg_url, first)
        assert _backend_pid(engine) != first  # no error: the ping found it dead and the pool reconnected
    finally:
        engine.dispose()


def test_a_recently_used_connection_is_trusted_without_a_ping(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, ping_after_idle=3600.0)
    try:
        first = _backend_pid(engine)
        _kill(pg_url, first)
        # Not pinged: the one request that meets the dead connection fails, and the pool recovers.
        with pytest.raises(exc.OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()
