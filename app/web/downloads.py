"""Files streamed to the browser or an API client (the members' CSV export).

A stream outlives its request: the request's session is closed when the view returns, and reading on it
afterwards opened a new transaction that nobody ended (40 exports left 8 connections "idle in transaction",
one for over 10 minutes, blocking a migration). So a stream reads on a session of its own, opened when the
first line is asked for and closed after the last one, or when the client goes away (the WSGI server closes
the response, which closes the generator).
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response

from app.database import sessions
from app.loyalty import member_export
from app.models import Program


def members_csv(program: Program, *, filename: str) -> Response:
    """The programme's members as a CSV attachment (``member_export``), read on the stream's own session."""
    factory, program_id = sessions(), program.id

    def stream() -> Iterator[str]:
        session = factory()
        try:
            found = session.get(Program, program_id)
            if found is not None:  # deleted between the request and the first line: an empty file
                yield from member_export.lines(session, program=found)
        finally:
            session.close()

    return Response(stream(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
