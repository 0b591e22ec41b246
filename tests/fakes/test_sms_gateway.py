"""The SMS stand-in is as strict as Twilio, with its knowledge of the Messages resource taken from the official
``twilio`` library: a parameter the resource does not have is ignored but flagged (Twilio's warning 20001),
and missing or bad values get Twilio's 400 error with Twilio's code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from twilio.rest.api.v2010.account.message import MessageInstance

from tests.fakes.sms_gateway import MESSAGE_PARAMETERS, FakeSmsGateway, TwilioWarning, official_request

ACCOUNT = "AC" + "5a1e" * 8
TOKEN = "tw-auth-token-0123456789abcdef0123"  # noqa: S105 (a test credential)
SENDER, PHONE = "+15005550006", "+37369001234"
OK = {"To": PHONE, "From": SENDER, "Body": "Hello", "StatusCallback": "https://tallypass.test/sms/status"}


@pytest.fixture
def gateway() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway(ACCOUNT, TOKEN, numbers=[SENDER]) as fake:
        yield fake
        fake.warnings.clear()  # the tests below look at them themselves


def post(gateway: FakeSmsGateway, form: dict[str, Any]) -> httpx.Response:
    """A form POST to the Messages resource (a list value is the field sent once per item)."""
    return httpx.post(gateway.api_url + gateway.messages_path, data=form, auth=(ACCOUNT, TOKEN), timeout=5)


def test_the_parameters_are_the_official_librarys() -> None:
    assert MESSAGE_PARAMETERS["To"].required and MESSAGE_PARAMETERS["To"].argument == "to"
    assert [p.field for p in MESSAGE_PARAMETERS.values() if p.required] == ["To"]
    assert MESSAGE_PARAMETERS["StatusCallback"].argument == "status_callback"
    assert MESSAGE_PARAMETERS["From"].argument == "from_" and MESSAGE_PARAMETERS["MediaUrl"].kind is list
    assert MESSAGE_PARAMETERS["ScheduleType"].choices == {MessageInstance.ScheduleType.FIXED}
    # every one of them is a form field the library really sends
    for parameter in MESSAGE_PARAMETERS.values():
        value = ["x"] if parameter.kind is list else "x"
        sent = official_request(ACCOUNT, TOKEN, **{"to": PHONE, parameter.argument: value}).data
        assert parameter.field in sent


def test_a_well_formed_message_is_accepted_without_warning(gateway: FakeSmsGateway) -> None:
    response = post(gateway, OK)
    assert response.status_code == 201 and response.json()["status"] == "queued"
    assert gateway.messages[response.json()["sid"]].status_callback == OK["StatusCallback"]
    assert not gateway.warnings


@pytest.mark.parametrize("extra", [{"Statuscallback": "https://tallypass.test/sms/status"},
                                   {"status_callback": "x"}, {"Idempotency-Key": "1"}])
def test_an_unknown_parameter_is_ignored_as_twilio_ignores_it_but_flagged(
    gateway: FakeSmsGateway, extra: dict[str, str]
) -> None:
    form = {key: value for key, value in OK.items() if key != "StatusCallback"} | extra
    response = post(gateway, form)

    assert response.status_code == 201  # Twilio carries it out…
    assert gateway.messages[response.json()["sid"]].status_callback is None  # …without the misspelt field
    assert gateway.warnings == [TwilioWarning(20001, gateway.messages_path, list(extra))]


def test_leaving_the_stand_in_with_a_warning_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="20001"), FakeSmsGateway(ACCOUNT, TOKEN) as fake:
        post(fake, {**OK, "Foo": "bar"})


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"To": None}, 21604),
        ({"To": ""}, 21604),
        ({"From": None}, 21603),
        ({"Body": None}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"To": "0037369001234"}, 21211),
        ({"To": "+373 69 001 234"}, 21211),
        ({"To": SENDER}, 21266),
        ({"From": "+15005550001"}, 21606),
        ({"StatusCallback": "/sms/status"}, 21609),
        ({"StatusCallback": "tallypass.test/sms/status"}, 21609),
        ({"StatusCallback": "ftp://tallypass.test/sms/status"}, 21609),
        ({"StatusCallback": "https://shop_one.test/sms/status"}, 21609),
        ({"StatusCallback": "https://tallypass.test:99999/sms/status"}, 21609),
        ({"StatusCallback": "https://tallypass.test/" + "x" * 4000}, 21609),
        ({"ValidityPeriod": "0"}, 21624),
        ({"ValidityPeriod": "36001"}, 21624),
        ({"ValidityPeriod": "ten"}, 21624),
        ({"ScheduleType": "later"}, 35126),
    ],
)
def test_missing_and_bad_values_get_twilios_error(gateway: FakeSmsGateway, change: dict[str, Any], code: int) -> None:
    form = {key: value for key, value in {**OK, **change}.items() if value is not None}
    response = post(gateway, form)

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["code"], body["status"], body["more_info"]) == (code, 400, f"https://www.twilio.com/docs/errors/{code}")
    assert not gateway.messages


@pytest.mark.parametrize(
    "change",
    [{"From": None, "MessagingServiceSid": "MG" + "0" * 32}, {"Body": None, "MediaUrl": "https://cdn.test/a.png"},
     {"Body": None, "ContentSid": "HX" + "0" * 32}, {"ValidityPeriod": "36000"}, {"ValidityPeriod": "1"},
     {"StatusCallback": "http://127.0.0.1:5000/sms/status?shop=1"}],
)
def test_what_twilio_accepts_is_accepted(gateway: FakeSmsGateway, change: dict[str, Any]) -> None:
    form = {key: value for key, value in {**OK, **change}.items() if value is not None}
    assert post(gateway, form).status_code == 201
    assert not gateway.warnings


def test_a_repeated_field_is_seen_whole(gateway: FakeSmsGateway) -> None:
    form = {"To": PHONE, "From": SENDER, "MediaUrl": ["https://cdn.test/a.png", "https://cdn.test/b.png"]}
    assert post(gateway, form).status_code == 201
    assert [v for k, v in gateway.requests[-1].fields if k == "MediaUrl"] == ["https://cdn.test/a.png",
                                                                             "https://cdn.test/b.png"]
