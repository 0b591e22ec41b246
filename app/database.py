"""One SQLAlchemy session per request, kept on ``g`` and closed at teardown (flaskr's pattern)."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory
from app.settings import Settings

ENGINE = "tallypass.engine"
SESSIONS = "tallypass.sessions"


def init_app(app: Flask, settings: Settings) -> None:
    from app.tasks.outbox import dispatch_events

    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    app.extensions[ENGINE] = engine
    # Tests replace this factory with one bound to their rolled-back connection.
    app.extensions[SESSIONS] = make_session_factory(engine, dispatch=dispatch_events)
    app.teardown_appcontext(_close_session)


def sessions() -> sessionmaker[Session]:
    return current_app.extensions[SESSIONS]


def get_session() -> Session:
    if "db" not in g:
        g.db = sessions()()
    return g.db


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
