"""Small pieces every outbound client shares: reading ``Retry-After``, resetting after a fork, and keeping
HTTP/2 header blocks out of the logs."""

from __future__ import annotations

import datetime as dt
import logging
import os
import weakref
from email.utils import parsedate_to_datetime
from typing import Any


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


_FORK_AWARE: weakref.WeakSet[Any] = weakref.WeakSet()


def reset_after_fork(client: Any) -> None:
    """Have ``client._after_fork_in_child()`` called in a forked child: Celery's prefork workers fork after
    import, and a child must never use the connections, event loops or locks its parent holds."""
    _FORK_AWARE.add(client)


def _after_fork_in_child() -> None:
    for client in list(_FORK_AWARE):
        client._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _HideHeaderBlocks(logging.Filter):
    """hpack logs every header it encodes or decodes at DEBUG: device tokens, access, provider and VAPID tokens,
    push endpoints (capability URLs). None of them may reach a log, so its records say only that much."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = "(HTTP/2 header block, not logged)", ()
        return True


for _name in ("hpack.hpack", "hpack.table"):
    logging.getLogger(_name).addFilter(_HideHeaderBlocks())
