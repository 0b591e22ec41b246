"""The POS request signature (CONTRACTS.md §3): ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.signing import TOLERANCE_SECONDS, SignatureError, parse_header, signature_header, verify

SECRET = "sk_test-secret"
OTHER_SECRET = "sk_other-secret"
BODY = b'{"receipt_id":"R1","card":"123456","amount":"10.00"}'
NOW = 1_780_000_000


def v1(secret: str, t: int, body: bytes) -> str:
    """The digest computed independently of the module, straight from the contract."""
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- the happy path


def test_header_made_by_signature_header_verifies() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)
    verify(header, secret=SECRET, body=BODY, now=NOW)


def test_header_has_the_contract_layout() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)
    assert header == f"t={NOW},v1={v1(SECRET, NOW, BODY)}"


def test_header_without_timestamp_uses_the_clock() -> None:
    verify(signature_header(SECRET, BODY), secret=SECRET, body=BODY)


def test_empty_body_for_get_requests() -> None:
    verify(signature_header(SECRET, b"", timestamp=NOW), secret=SECRET, body=b"", now=NOW)


def test_header_written_by_hand_from_the_contract_verifies() -> None:
    verify(f"t={NOW},v1={v1(SECRET, NOW, BODY)}", secret=SECRET, body=BODY, now=NOW)


def test_spaces_after_commas_are_tolerated() -> None:
    verify(f"t={NOW}, v1={v1(SECRET, NOW, BODY)}", secret=SECRET, body=BODY, now=NOW)


def test_upper_case_hex_is_accepted() -> None:
    verify(f"t={NOW},v1={v1(SECRET, NOW, BODY).upper()}", secret=SECRET, body=BODY, now=NOW)


# ---------------------------------------------------------------- wrong content


def test_changed_body_fails() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, secret=SECRET, body=BODY.replace(b"10.00", b"11.00"), now=NOW)


def test_one_extra_byte_fails() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, secret=SECRET, body=BODY + b"\n", now=NOW)


def test_another_secret_fails() -> None:
    header = signature_header(OTHER_SECRET, BODY, timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, secret=SECRET, body=BODY, now=NOW)


def test_signature_of_another_timestamp_fails() -> None:
    """The timestamp is part of the signed message: changing t alone breaks the signature."""
    digest = v1(SECRET, NOW, BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify(f"t={NOW + 1},v1={digest}", secret=SECRET, body=BODY, now=NOW)


# ---------------------------------------------------------------- the clock window


def test_tolerance_is_five_minutes() -> None:
    assert TOLERANCE_SECONDS == 300


@pytest.mark.parametrize("offset", [-300, 300, -299, 299, 0])
def test_up_to_300_seconds_off_passes(offset: int) -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW + offset)
    verify(header, secret=SECRET, body=BODY, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86_400])
def test_more_than_300_seconds_off_fails(offset: int) -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW + offset)
    with pytest.raises(SignatureError, match="300 s"):
        verify(header, secret=SECRET, body=BODY, now=NOW)


def test_fractional_now_just_over_the_window_fails() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)
    with pytest.raises(SignatureError, match="300 s"):
        verify(header, secret=SECRET, body=BODY, now=NOW + 300.5)


def test_stale_timestamp_is_refused_even_with_a_valid_signature() -> None:
    """Replaying a correctly signed request later is refused on the clock alone."""
    t = NOW - 301
    with pytest.raises(SignatureError, match="clock"):
        verify(f"t={t},v1={v1(SECRET, t, BODY)}", secret=SECRET, body=BODY, now=NOW)


# ---------------------------------------------------------------- malformed headers


@pytest.mark.parametrize(
    "header",
    [
        "",
        " ",
        ",",
        "garbage",
        f"v1={'0' * 64}",  # no t
        f"t={NOW}",  # no v1
        f"t={NOW},v0={'0' * 64}",  # an unknown scheme only
        f"T={NOW},V1={'0' * 64}",  # names are case-sensitive
    ],
)
def test_malformed_headers_fail_with_a_helpful_message(header: str) -> None:
    with pytest.raises(SignatureError, match=r"Tallypass-Signature must look like t=<unix seconds>,v1=<hex>"):
        verify(header, secret=SECRET, body=BODY, now=NOW)


def test_empty_v1_value_fails() -> None:
    with pytest.raises(SignatureError):
        verify(f"t={NOW},v1=", secret=SECRET, body=BODY, now=NOW)


@pytest.mark.parametrize("header", ["", f"v1={'0' * 64}", f"t={NOW}"])
def test_missing_parts_explain_the_expected_layout(header: str) -> None:
    with pytest.raises(SignatureError, match=r"t=<unix seconds>,v1=<hex>"):
        parse_header(header)


@pytest.mark.parametrize("t", ["abc", "-5", "1.5", "1e9", "12345678901234", "", " 17"])
def test_timestamp_that_is_not_digits_fails(t: str) -> None:
    digest = "0" * 64
    with pytest.raises(SignatureError, match="unix time in seconds|t=<unix seconds>"):
        verify(f"t={t},v1={digest}", secret=SECRET, body=BODY, now=NOW)


@pytest.mark.parametrize("t", ["abc", "-5", "1.5"])
def test_non_digit_timestamp_names_the_timestamp(t: str) -> None:
    with pytest.raises(SignatureError, match="timestamp t is not a unix time in seconds"):
        parse_header(f"t={t},v1={'0' * 64}")


def test_superscript_digit_timestamp_is_a_signature_error() -> None:
    with pytest.raises(SignatureError):
        verify(f"t=\u00b2,v1={'0' * 64}", secret=SECRET, body=BODY, now=NOW)


def test_signature_error_is_a_value_error() -> None:
    """Callers may catch ValueError; the message is safe to show to the POS."""
    assert issubclass(SignatureError, ValueError)


# ---------------------------------------------------------------- several v1 values (secret rotation)


def test_several_v1_values_pass_when_the_last_matches() -> None:
    header = f"t={NOW},v1={v1(OTHER_SECRET, NOW, BODY)},v1={v1(SECRET, NOW, BODY)}"
    verify(header, secret=SECRET, body=BODY, now=NOW)


def test_several_v1_values_pass_when_the_first_matches() -> None:
    header = f"t={NOW},v1={v1(SECRET, NOW, BODY)},v1={v1(OTHER_SECRET, NOW, BODY)}"
    verify(header, secret=SECRET, body=BODY, now=NOW)


def test_several_v1_values_fail_when_none_matches() -> None:
    header = f"t={NOW},v1={v1(OTHER_SECRET, NOW, BODY)},v1={'0' * 64}"
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, secret=SECRET, body=BODY, now=NOW)


def test_order_of_parts_does_not_matter() -> None:
    verify(f"v1={v1(SECRET, NOW, BODY)},t={NOW}", secret=SECRET, body=BODY, now=NOW)


def test_unknown_schemes_are_ignored_next_to_v1() -> None:
    verify(f"t={NOW},v0=deadbeef,v1={v1(SECRET, NOW, BODY)}", secret=SECRET, body=BODY, now=NOW)


def test_parse_header_returns_timestamp_and_lower_case_signatures() -> None:
    t, signatures = parse_header(f"t={NOW},v1=ABCDEF,v1=012345")
    assert t == NOW
    assert signatures == ["abcdef", "012345"]
