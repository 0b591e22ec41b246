"""Per-caller request limits (429), on the ``limits`` library: a moving window, counted in Redis when the
broker is Redis so every web process shares one count, else per process in memory.

Limits never switch off. While Redis is unreachable the counts live in this process's memory (each web
process then enforces the limits on its own), and Redis is tried again every ``RETRY_SECONDS``: an outage
costs one short timeout per process per period, not one per request, and is logged once when it starts,
at most once a minute while it lasts, and once when it ends. (Flask-Limiter has a similar fallback, but
only for limits declared on views; these are checked in code once a signature or an address is known, and
the sign-in back-off below counts only failures, which no limiter library does.)

Sign-in throttling (``SignInThrottle``) is keyed by client address *and* account, so nobody can lock the
owner of an account out by guessing at her password from elsewhere."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many, storage, strategies
from limits.errors import StorageError
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.errors import RateLimited

EXTENSION = "tallypass.ratelimit"
IP_EXTENSION = "tallypass.ratelimit.ip"
POS_FAILURE_EXTENSION = "tallypass.ratelimit.pos_failures"
SIGN_IN_EXTENSION = "tallypass.ratelimit.sign_in"
REDIS_TIMEOUT = 0.25  # seconds: a limit check must never hold a request long
RETRY_SECONDS = 5.0  # after Redis failed, counts stay in memory this long before Redis is tried again
LOG_EVERY_SECONDS = 60.0
log = logging.getLogger(__name__)
T = TypeVar("T")


class Counters:
    """Where the counts live: Redis (shared by every process) when configured, else this process's memory;
    while Redis is unreachable, this process's memory too."""

    def __init__(self, uri: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.memory = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self.shared: strategies.MovingWindowRateLimiter | None = None
        if uri.startswith(("redis://", "rediss://")):
            # One try per check (redis-py would otherwise retry a refused connection three times).
            redis = storage.storage_from_string(uri, wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT,
                                                socket_connect_timeout=REDIS_TIMEOUT, retry=Retry(NoBackoff(), 0))
            self.shared = strategies.MovingWindowRateLimiter(redis)
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.logged_at = 0.0
        self.lock = threading.Lock()

    def run(self, operation: Callable[[strategies.MovingWindowRateLimiter], T]) -> T:
        """``operation`` on the shared counts, or on this process's if they are unreachable."""
        shared = self.shared
        if shared is not None and self.clock() >= self.retry_at:
            try:
                result = operation(shared)
            except StorageError as exc:
                self._unreachable(exc)
            else:
                if self.down_since is not None:
                    self._reachable()
                return result
        return operation(self.memory)

    @property
    def degraded(self) -> bool:
        """True while the counts are kept per process because Redis is unreachable."""
        return self.down_since is not None

    def _unreachable(self, exc: StorageError) -> None:
        now = self.clock()
        with self.lock:
            self.retry_at = now + RETRY_SECONDS
            cause = type(exc.storage_error).__name__
            if self.down_since is None:
                self.down_since = self.logged_at = now
                log.warning("rate-limit store unreachable (%s): limits are counted in this process's memory "
                            "until it answers again (retried every %d s)", cause, RETRY_SECONDS)
            elif now - self.logged_at >= LOG_EVERY_SECONDS:
                self.logged_at = now
                log.warning("rate-limit store still unreachable after %d s (%s): limits are counted per process",
                            now - self.down_since, cause)

    def _reachable(self) -> None:
        with self.lock:
            if self.down_since is None:
                return
            log.warning("rate-limit store reachable again after %d s: limits are shared again",
                        self.clock() - self.down_since)
            self.down_since = None


class Limiter:
    """A ``limits`` string ("10/minute;60/hour"): every item must have room."""

    def __init__(self, spec: str, counters: Counters) -> None:
        self.items: list[RateLimitItem] = parse_many(spec)
        self.counters = counters

    def check(self, scope: str, key: str, *, what: str = "requests for this key") -> None:
        """Count one request. :raise RateLimited: one of the limits is used up; ``Retry-After`` says when
        to come back."""
        refused = self.counters.run(lambda counts: self._hit(counts, scope, key))
        if refused is not None:
            item, retry_after = refused
            raise RateLimited(f"more than {item.amount} {what} per {_window(item)}; retry in {retry_after} s",
                              extra={"retry_after": retry_after})

    def wait(self, scope: str, key: str) -> int | None:
        """Seconds until there is room again if a limit is used up, else None; counts nothing."""
        return self.counters.run(lambda counts: self._wait(counts, scope, key))

    def count(self, scope: str, key: str) -> None:
        """Count one event (a failure), whether or not there is room."""
        def hit_all(counts: strategies.MovingWindowRateLimiter) -> None:
            for item in self.items:
                counts.hit(item, scope, key)

        self.counters.run(hit_all)

    def _hit(self, counts: strategies.MovingWindowRateLimiter, scope: str, key: str
             ) -> tuple[RateLimitItem, int] | None:
        for item in self.items:
            if not counts.hit(item, scope, key):
                return item, _retry_after(counts, item, scope, key)
        return None

    def _wait(self, counts: strategies.MovingWindowRateLimiter, scope: str, key: str) -> int | None:
        waits = [_retry_after(counts, item, scope, key) for item in self.items if not counts.test(item, scope, key)]
        return max(waits) if waits else None


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


def _retry_after(counts: strategies.MovingWindowRateLimiter, item: RateLimitItem, scope: str, key: str) -> int:
    reset = counts.get_window_stats(item, scope, key).reset_time
    return max(1, math.ceil(reset - time.time()))


@dataclass(frozen=True)
class Held:
    """A sign-in refused before the password is looked at: ``why`` is "account" (this address got this
    account's password wrong too often) or "address" (this address got many accounts' passwords wrong)."""

    why: str
    retry_after: int


class SignInThrottle:
    """Wrong passwords, counted per (client address, account) and per address.

    - For one account from one address, ``free_failures`` wrong passwords in a row cost nothing; from the
      last of them on, each wrong password makes the address wait before its next try: ``FIRST_WAIT_SECONDS``,
      then twice as long each time, up to ``max_wait`` seconds (during a wait even the right password is
      refused: it would be a free guess). A right password clears that address's count for that account.
      The count is forgotten ``FAILURE_MEMORY_SECONDS`` after its first failure.
    - From one address, wrong passwords across all accounts (password spraying) are limited by
      ``address_limit`` (a ``limits`` string).
    - Nothing is counted per account alone: a guesser elsewhere never holds up the owner at her address.

    Unknown accounts are counted exactly like real ones, so the answers never tell whether an account
    exists. Accounts are keyed by a hash of the e-mail address: the counters hold no e-mail address."""

    FIRST_WAIT_SECONDS = 30
    FAILURE_MEMORY_SECONDS = 24 * 3600

    def __init__(self, counters: Counters, *, free_failures: int, max_wait: int, address_limit: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.counters, self.free_failures, self.max_wait, self.clock = counters, free_failures, max_wait, clock
        self.address_limit = Limiter(address_limit, counters)

    def held(self, address: str, email: str) -> Held | None:
        """Why this address may not try this account's password now, or None."""
        until = self.counters.run(lambda counts: counts.storage.get(self._key("wait", address, email))) / 1000
        if until > self.clock():
            return Held("account", max(1, math.ceil(until - self.clock())))
        wait = self.address_limit.wait("sign-in-failures", address)
        return Held("address", wait) if wait is not None else None

    def failed(self, address: str, email: str) -> None:
        failures_key, wait_key = self._key("failures", address, email), self._key("wait", address, email)

        def record(counts: strategies.MovingWindowRateLimiter) -> None:
            failures = counts.storage.incr(failures_key, self.FAILURE_MEMORY_SECONDS)
            if failures >= self.free_failures:
                wait = min(self.max_wait, self.FIRST_WAIT_SECONDS * 2 ** min(failures - self.free_failures, 32))
                until_ms = int((self.clock() + wait) * 1000)  # counters hold integers
                counts.storage.clear(wait_key)
                counts.storage.incr(wait_key, wait + 1, amount=until_ms)

        self.counters.run(record)
        self.address_limit.count("sign-in-failures", address)

    def succeeded(self, address: str, email: str) -> None:
        def clear(counts: strategies.MovingWindowRateLimiter) -> None:
            counts.storage.clear(self._key("failures", address, email))
            counts.storage.clear(self._key("wait", address, email))

        self.counters.run(clear)

    @staticmethod
    def _key(kind: str, address: str, email: str) -> str:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return f"sign-in/{kind}/{address}/{account}"


def client_address() -> str:
    """The caller's address as the limits count it (behind ``TALLYPASS_PROXY_HOPS`` proxies, the client's)."""
    return counted_address(request.remote_addr or "-")


def counted_address(address: str) -> str:
    """An IPv6 address counts as its /64 network (one subscriber usually holds a whole /64, and could
    otherwise take a fresh address for every try)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def init_app(app: Flask) -> None:
    settings = app.config["TALLYPASS"]
    counters = Counters(settings.broker_url)
    app.extensions[EXTENSION] = Limiter(settings.pos_rate_limit, counters)
    app.extensions[IP_EXTENSION] = Limiter(settings.form_rate_limit, counters)
    app.extensions[POS_FAILURE_EXTENSION] = Limiter(settings.pos_auth_failure_limit, counters)
    app.extensions[SIGN_IN_EXTENSION] = SignInThrottle(
        counters, free_failures=settings.login_free_failures, max_wait=settings.login_max_wait_seconds,
        address_limit=settings.login_failure_limit)
    if os.environ.get("TALLYPASS_LOGIN_RATE_LIMIT"):
        log.warning("TALLYPASS_LOGIN_RATE_LIMIT is no longer used: sign-in is throttled per address and account "
                    "(TALLYPASS_LOGIN_FREE_FAILURES, TALLYPASS_LOGIN_MAX_WAIT_SECONDS) and per address "
                    "(TALLYPASS_LOGIN_FAILURE_LIMIT); see docs/rate-limits-and-headers.md")


def check(scope: str, key: str) -> None:
    """The request limit of one POS key."""
    current_app.extensions[EXTENSION].check(scope, key)


def check_ip(scope: str, address: str) -> None:
    """The limit for public, unauthenticated posts (sign-up, one-time codes, Wallet device logs), per
    client address (an IPv6 address counts as its /64)."""
    current_app.extensions[IP_EXTENSION].check(scope, counted_address(address), what="posts from this address")


def count_pos_failure() -> None:
    """One failed POS authentication from this client address.

    :raise RateLimited: this address has failed too often; the caller answers 429 instead of 401."""
    current_app.extensions[POS_FAILURE_EXTENSION].check("pos-auth-failures", client_address(),
                                                        what="failed authentications from this address")


def sign_in_throttle() -> SignInThrottle:
    return current_app.extensions[SIGN_IN_EXTENSION]
