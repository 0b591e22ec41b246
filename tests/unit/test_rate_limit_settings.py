"""Rate-limit settings are checked when the service starts, with a message that says what is expected."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Settings


@pytest.mark.parametrize("name", ["pos_rate_limit", "form_rate_limit", "pos_auth_failure_limit",
                                  "login_failure_limit"])
def test_a_limit_string_that_does_not_parse_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match='is not a rate limit such as "10/minute"'):
        Settings(_env_file=None, **{name: "ten a minute"})  # type: ignore[call-arg, arg-type]
    good = Settings(_env_file=None, **{name: "2/5 minutes;10/hour"})  # type: ignore[call-arg, arg-type]
    assert getattr(good, name) == "2/5 minutes;10/hour"


def test_sign_in_waits_are_bounded() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, login_free_failures=0)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, login_max_wait_seconds=5)  # type: ignore[call-arg]
