"""Per-caller request limits (429), on the ``limits`` library: a moving window, counted in Redis when
the broker is Redis so every web process shares one count, else per process in memory."""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, current_app
from limits import RateLimitItem, parse_many, storage, strategies

from app.errors import RateLimited

EXTENSION = "tallypass.ratelimit"
IP_EXTENSION = "tallypass.ratelimit.ip"
LOGIN_EXTENSION = "tallypass.ratelimit.login"
log = logging.getLogger(__name__)


class Limiter:
    def __init__(self, spec: str, storage_uri: str) -> None:
        self.items: list[RateLimitItem] = parse_many(spec)
        options = {"socket_timeout": 0.25, "socket_connect_timeout": 0.25} if storage_uri.startswith("redis") else {}
        self.strategy = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri, **options))

    def check(self, scope: str, key: str) -> None:
        """:raise RateLimited: one of the limits is used up; ``Retry-After`` says when to come back.

        Fails open: if the counter store is unreachable the request goes through (a sale matters more
        than the limit), and the outage is logged."""
        for item in self.items:
            try:
                allowed = self.strategy.hit(item, scope, key)
            except Exception as exc:  # Redis down or timing out
                log.warning("rate limit not enforced, its store is unreachable: %s", type(exc).__name__)
                return
            if not allowed:
                reset = self.strategy.get_window_stats(item, scope, key).reset_time
                retry_after = max(1, math.ceil(reset - time.time()))
                raise RateLimited(
                    f"more than {item} for this key; retry in {retry_after} s",
                    extra={"retry_after": retry_after},
                )


def init_app(app: Flask) -> None:
    settings = app.config["TALLYPASS"]
    broker = settings.broker_url
    storage_uri = broker if broker.startswith(("redis://", "rediss://")) else "memory://"
    app.extensions[EXTENSION] = Limiter(settings.pos_rate_limit, storage_uri)
    app.extensions[IP_EXTENSION] = Limiter(settings.form_rate_limit, storage_uri)
    app.extensions[LOGIN_EXTENSION] = Limiter(settings.login_rate_limit, storage_uri)


def check(scope: str, key: str) -> None:
    current_app.extensions[EXTENSION].check(scope, key)


def check_ip(scope: str, address: str) -> None:
    """The limit for public forms (sign-up, one-time codes), per client address."""
    current_app.extensions[IP_EXTENSION].check(scope, address)


def check_login(email: str) -> None:
    """Sign-in attempts for one e-mail address, wherever they come from (a slow password guesser)."""
    current_app.extensions[LOGIN_EXTENSION].check("login", email.strip().lower())
