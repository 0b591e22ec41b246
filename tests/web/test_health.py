from sqlalchemy import Connection

from app import create_app
from app.database import ENGINE
from tests.web.test_reads_without_writes import make_read_only


def test_healthz_ok(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_an_unreachable_database(settings):
    # Nothing listens on port 1: the check must answer 503 quickly, not hang or crash.
    down = settings.model_copy(update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"})
    app = create_app(down)
    r = app.test_client().get("/healthz")
    app.extensions[ENGINE].dispose()
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) > 0
    body = r.get_json()
    assert (body["status"], body["database"]) == ("unavailable", "unreachable")
    assert "cannot be reached" in body["detail"]


def test_healthz_reports_a_database_that_refuses_writes(client, connection: Connection, is_postgres: bool):
    """A hot standby after a failover answers reads, so "SELECT 1" passes; it is no use to the tills."""
    with make_read_only(connection, is_postgres):
        r = client.get("/healthz")
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) > 0
    body = r.get_json()
    assert (body["status"], body["database"]) == ("unavailable", "read-only")
    assert "refuses writes" in body["detail"]
    assert client.get("/healthz").status_code == 200


def test_responses_carry_a_request_id(client):
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "till-42"}).headers["X-Request-ID"] == "till-42"
