"""``GET /healthz`` for load balancers: 200 when the database answers and accepts writes; 503 with
``Retry-After`` when it is unreachable, out of connections, or read-only (a hot standby after a failover, or
``default_transaction_read_only``), with what is wrong in ``database``."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from app import db_outage
from app.database import discard_session, get_session

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

# For the operator reading the probe's answer.
DETAILS = {
    db_outage.UNREACHABLE: "PostgreSQL cannot be reached: it is down or restarting, or the network to it is.",
    db_outage.READ_ONLY: "PostgreSQL answers but refuses writes: a hot standby (after a failover) or "
                         "default_transaction_read_only. Purchases and sign-ups fail until it accepts writes.",
    db_outage.OVERLOADED: "PostgreSQL has no free connection: too many clients, or this process's pool is used up.",
    db_outage.TIMEOUT: "PostgreSQL did not answer the health check within the statement timeout.",
}


@bp.get("/healthz")
def healthz() -> Response:
    try:
        state = db_outage.database_state(get_session())
    except SQLAlchemyError as error:
        outage = db_outage.outage_of(error)
        if outage is None:
            raise  # a bug: the application's error path logs it and answers 500
        discard_session()
        log.warning("health check: database %s (%s)", outage.kind, db_outage.describe(error))
        return _unavailable(outage)
    if state == db_outage.READ_ONLY:
        log.warning("health check: the database is read-only")
        return _unavailable(db_outage.OUTAGES[db_outage.READ_ONLY])
    response = jsonify(status="ok", database="ok")
    response.headers["Cache-Control"] = "no-store"
    return response


def _unavailable(outage: db_outage.Outage) -> Response:
    response = jsonify(status="unavailable", database=outage.kind, detail=DETAILS[outage.kind])
    response.status_code = 503
    response.headers["Retry-After"] = str(outage.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response
