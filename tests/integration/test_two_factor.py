"""Two-factor sign-in (app.merchants.two_factor), checked with codes made by pyotp, a real TOTP library: the
current code and one step either side (clock skew) are accepted, two steps off and wrong codes are refused, a code
is never accepted twice (nor an older one after a newer), recovery codes work once each, and the secret is stored
sealed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import vault
from app.errors import Conflict, InvalidInput
from app.merchants import two_factor
from app.merchants.users import create_user
from app.models import AuditEvent, RecoveryCode, User
from tests.conftest import TEST_SECRET_KEY

NOW = datetime(2026, 12, 8, 1, 0, 15, tzinfo=UTC)
STEP = timedelta(seconds=30)


def _enrolled(db: Session) -> tuple[User, pyotp.TOTP, list[str]]:
    user = create_user(db, email="boss@shop.test", password="correct horse battery", role="admin")
    secret = two_factor.begin(db, user=user, secret_key=TEST_SECRET_KEY)
    codes = two_factor.confirm(db, user=user, code=pyotp.TOTP(secret).at(NOW), now=NOW, secret_key=TEST_SECRET_KEY)
    return user, pyotp.TOTP(secret), codes


def test_enrolment_needs_a_right_code_and_stores_the_secret_sealed(db_session: Session) -> None:
    user = create_user(db_session, email="boss@shop.test", password="correct horse battery", role="admin")
    secret = two_factor.begin(db_session, user=user, secret_key=TEST_SECRET_KEY)
    assert len(secret) == 32 and not user.two_factor
    assert secret.encode() not in user.totp_secret_encrypted  # type: ignore[operator]
    assert vault.unseal(user.totp_secret_encrypted, secret_key=TEST_SECRET_KEY) == secret  # type: ignore[arg-type]
    uri = two_factor.provisioning_uri(user, secret)
    parsed = pyotp.parse_uri(uri)
    assert uri.startswith("otpauth://totp/Tallypass:boss%40shop.test?") and parsed.secret == secret
    assert parsed.issuer == "Tallypass" and parsed.digits == 6 and parsed.interval == 30

    totp = pyotp.TOTP(secret)
    wrong = f"{(int(totp.at(NOW)) + 1) % 1_000_000:06d}"
    for bad in (wrong, "", "12345", "abcdef", "１２３４５６", totp.at(NOW - 3 * STEP)):
        with pytest.raises(InvalidInput) as refused:
            two_factor.confirm(db_session, user=user, code=bad, now=NOW, secret_key=TEST_SECRET_KEY)
        assert refused.value.errors[0].field == "code"
    assert not user.two_factor and db_session.scalars(select(RecoveryCode)).first() is None

    codes = two_factor.confirm(db_session, user=user, code=totp.at(NOW), now=NOW, secret_key=TEST_SECRET_KEY)
    assert user.two_factor and len(codes) == 10 == len(set(codes))
    stored = db_session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10 and not set(codes) & set(stored)
    with pytest.raises(Conflict):  # on already: no second secret
        two_factor.begin(db_session, user=user, secret_key=TEST_SECRET_KEY)
    assert db_session.scalars(select(AuditEvent.action)).all() == ["two-factor-enabled"]


def test_codes_of_one_step_either_side_pass_and_no_code_passes_twice(db_session: Session) -> None:
    user, totp, _ = _enrolled(db_session)
    later = NOW + 10 * STEP
    assert two_factor.verify(db_session, user=user, code=totp.at(later + 3 * STEP), now=later,
                             secret_key=TEST_SECRET_KEY) is None  # too far ahead
    assert two_factor.verify(db_session, user=user, code=totp.at(later - 2 * STEP), now=later,
                             secret_key=TEST_SECRET_KEY) is None  # too old
    assert two_factor.verify(db_session, user=user, code="000000" if totp.at(later) != "000000" else "111111",
                             now=later, secret_key=TEST_SECRET_KEY) is None  # wrong
    # The phone's clock is 30 s behind: its code is the previous step's, and is accepted.
    assert two_factor.verify(db_session, user=user, code=totp.at(later - STEP), now=later,
                             secret_key=TEST_SECRET_KEY) == "totp"
    assert user.last_login_at == later
    # The same code again (a replay) is refused, even within its window.
    assert two_factor.verify(db_session, user=user, code=totp.at(later - STEP), now=later + STEP / 3,
                             secret_key=TEST_SECRET_KEY) is None
    # A clock 30 s ahead: the next step's code is accepted; after it, the current step's is refused (older).
    assert two_factor.verify(db_session, user=user, code=totp.at(later + STEP), now=later,
                             secret_key=TEST_SECRET_KEY) == "totp"
    assert two_factor.verify(db_session, user=user, code=totp.at(later), now=later,
                             secret_key=TEST_SECRET_KEY) is None
    assert two_factor.verify(db_session, user=user, code=" ".join([totp.at(later + 3 * STEP)[:3],
                                                                  totp.at(later + 3 * STEP)[3:]]),
                             now=later + 3 * STEP, secret_key=TEST_SECRET_KEY) == "totp"  # "123 456" as apps show


def test_recovery_codes_work_once_each(db_session: Session) -> None:
    user, _, codes = _enrolled(db_session)
    assert two_factor.verify(db_session, user=user, code=codes[3].upper().replace("-", " "), now=NOW,
                             secret_key=TEST_SECRET_KEY) == "recovery"
    assert two_factor.verify(db_session, user=user, code=codes[3], now=NOW, secret_key=TEST_SECRET_KEY) is None
    assert two_factor.recovery_codes_left(db_session, user=user) == 9
    assert two_factor.verify(db_session, user=user, code="x" * 65, now=NOW, secret_key=TEST_SECRET_KEY) is None
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "two-factor-recovery-code-used")).one()
    assert event.details == {"email": "boss@shop.test", "codes_left": 9}
    assert codes[3] not in str(event.details)


def test_disabling_and_an_admins_reset_forget_the_secret_and_codes(db_session: Session) -> None:
    user, totp, codes = _enrolled(db_session)
    other = create_user(db_session, email="other@shop.test", password="correct horse battery", role="admin")
    two_factor.reset(db_session, user=user, now=NOW, actor=other)
    assert not user.two_factor and user.totp_secret_encrypted is None
    assert db_session.scalars(select(RecoveryCode)).first() is None
    assert two_factor.verify(db_session, user=user, code=totp.at(NOW + STEP), now=NOW + STEP,
                             secret_key=TEST_SECRET_KEY) is None
    assert two_factor.verify(db_session, user=user, code=codes[0], now=NOW, secret_key=TEST_SECRET_KEY) is None
    reset = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "two-factor-reset")).one()
    assert (reset.actor, reset.target) == ("other@shop.test", f"user:{user.id}")
    # Enrolling again makes a new secret: codes of the old one no longer pass.
    secret = two_factor.begin(db_session, user=user, secret_key=TEST_SECRET_KEY)
    assert secret != totp.secret
    two_factor.confirm(db_session, user=user, code=pyotp.TOTP(secret).at(NOW), now=NOW, secret_key=TEST_SECRET_KEY)
    two_factor.disable(db_session, user=user, now=NOW, actor=user)
    assert not user.two_factor and "two-factor-disabled" in db_session.scalars(select(AuditEvent.action)).all()


def test_after_the_secret_key_changes_a_recovery_code_still_signs_in(db_session: Session) -> None:
    user, totp, codes = _enrolled(db_session)
    other_key = "another-secret-key-that-is-long-enough-for-production"
    assert two_factor.verify(db_session, user=user, code=totp.at(NOW + STEP), now=NOW + STEP,
                             secret_key=other_key) is None
    assert two_factor.verify(db_session, user=user, code=codes[0], now=NOW, secret_key=other_key) == "recovery"
