"""Phone numbers in E.164 (``+37369123456``), the one form the database holds. Shared by the POS and form
schemas, the member import and static segment lists."""

from __future__ import annotations

import phonenumbers


def normalise_phone(value: str, region: str | None) -> str:
    """E.164, or ValueError with a message a cashier or marketer understands."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError("is not a phone number; use the international format, e.g. +37369123456") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_for(program_region: str | None, default: str | None) -> str | None:
    """The region local numbers are read in on a programme's pages and APIs: the programme's own
    (``Program.phone_region``), else the process-wide default (``TALLYPASS_DEFAULT_PHONE_REGION``)."""
    return program_region or default
