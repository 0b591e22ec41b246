"""The SMS channel against the local stand-in of a Twilio-compatible gateway (tests/fakes/sms_gateway.py, over
real HTTP): sending, retries and refusals, the channel outbox, signed delivery-status callbacks, and STOP /
START from customers, down to their consent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from app import log as log_setup
from app.campaigns import lifecycle
from app.campaigns.lifecycle import VariantSpec
from app.campaigns.results import results
from app.campaigns.send import send_batch
from app.channels.sms import (
    SentSms,
    SmsClient,
    SmsRejected,
    SmsUnavailable,
    TwilioConfig,
    build_sms_client,
    mask_phone,
    opt_out_action,
    twilio_signature,
    valid_signature,
)
from app.database import SESSIONS
from app.db import utcnow
from app.loyalty import enrollment
from app.messaging import sms
from app.models import (
    Campaign,
    ChannelMessage,
    Consent,
    Customer,
    Delivery,
    Program,
    SmsMessage,
    SmsOptOut,
    SmsStatusReport,
    Tier,
)
from app.settings import Settings
from app.tasks.campaigns import campaign_channels
from app.tasks.sms import apply_early_sms_reports
from app.web import sms as sms_web
from tests.fakes.sms_gateway import FakeSmsGateway, RecordedRequest, official_request
from tests.fakes.sms_gateway import twilio_signature as fake_signature
from tests.web.dashboard_client import csrf, sign_in_as

ACCOUNT = "AC" + "5a1e" * 8
TOKEN = "tw-auth-token-0123456789abcdef0123"  # noqa: S105 (a test credential)
SENDER = "+15005550006"
PHONE = "+37369001234"
OTHER = "+37369005678"
CALLBACK = "https://tallypass.test/sms/status"  # status_callback_url(settings.base_url) of the test settings
FAST = {"backoff": 0.005, "backoff_max": 0.05, "max_attempts": 3, "timeout": 5.0}
LOGGER = "app.channels.sms"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def mount(app: Flask) -> Flask:
    """The sms blueprint, until app/web/__init__.py registers it."""
    if "sms" not in app.blueprints:
        app.register_blueprint(sms_web.bp)
    return app


@pytest.fixture
def gateway() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway(ACCOUNT, TOKEN, numbers=[SENDER]) as fake:
        yield fake
        # every text the service sent asked for delivery reports, at our webhook
        assert {m.status_callback for m in fake.messages.values()} <= {CALLBACK}


@pytest.fixture
def settings(settings: Settings, gateway: FakeSmsGateway) -> Settings:
    return settings.model_copy(update={
        "sms_provider": "twilio", "sms_api_url": gateway.api_url, "sms_account_sid": ACCOUNT,
        "sms_auth_token": SecretStr(TOKEN), "sms_from": SENDER,
    })


@pytest.fixture
def app(app: Flask) -> Flask:
    return mount(app)


def flask_deliverer(client: FlaskClient) -> Callable[[str, dict[str, str], dict[str, str]], int]:
    """The gateway's webhooks, delivered to the app under test through its test client."""

    def deliver(url: str, form: dict[str, str], headers: dict[str, str]) -> int:
        parts = urlsplit(url)
        return client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=form,
                           headers=headers).status_code

    return deliver


@pytest.fixture
def twilio(gateway: FakeSmsGateway, client: FlaskClient, settings: Settings) -> FakeSmsGateway:
    """The gateway, with its webhooks going to the app: status callbacks and incoming messages."""
    gateway.deliver = flask_deliverer(client)
    gateway.inbound_url = settings.base_url + "/sms/inbound"
    return gateway


@pytest.fixture
def make_client(gateway: FakeSmsGateway) -> Iterator[Callable[..., SmsClient]]:
    made: list[SmsClient] = []

    def make(**overrides: Any) -> SmsClient:
        fields: dict[str, Any] = {"api_url": gateway.api_url, "account_sid": ACCOUNT, "auth_token": TOKEN,
                                  "sender": SENDER, "status_callback": CALLBACK, **FAST, **overrides}
        client = SmsClient(TwilioConfig(**fields))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def sms_client(make_client: Callable[..., SmsClient]) -> SmsClient:
    return make_client()


@pytest.fixture
def customer(make_program: Callable[..., Any], make_card: Callable[..., Any]) -> Customer:
    return make_card(make_program(), phone=PHONE, consents={"sms": True}).customer


def posts(gateway: FakeSmsGateway) -> int:
    return sum(1 for r in gateway.requests if r.method == "POST")


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and ", retry " in r.getMessage()]


def sms_consent(db_session: Session, customer: Customer) -> Consent:
    db_session.expire_all()
    return db_session.scalars(
        select(Consent).where(Consent.customer_id == customer.id, Consent.channel == "sms")
    ).one()


def opt_outs(db_session: Session) -> list[tuple[str, str]]:
    return [(o.phone, o.sender) for o in db_session.scalars(select(SmsOptOut).order_by(SmsOptOut.id))]


def send(db_session: Session, client: SmsClient | None, settings: Settings, to: str = PHONE,
         body: str = "Double points this weekend at Bean Co", **kwargs: Any) -> SmsMessage:
    return sms.send_sms(db_session, to=to, body=body, sender=SENDER, client=client, **kwargs)


# ------------------------------------------------------------------------------ signature and keywords


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),  # the example in Twilio's older security docs
        ("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),  # the same example in the current docs
    ],
)
def test_signature_matches_twilios_documented_example(caller: str, expected: str) -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": caller, "Digits": "1234", "From": caller,
              "To": "+18005551212"}

    assert twilio_signature("12345", url, params) == expected
    assert valid_signature("12345", url, params, expected)
    assert not valid_signature("12345", url, {**params, "Digits": "9999"}, expected)
    assert not valid_signature("12345", url.replace("bar=2", "bar=3"), params, expected)
    assert not valid_signature("54321", url, params, expected)
    assert not valid_signature("12345", url, params, expected[:-1])
    assert not valid_signature("12345", url, params, None)
    assert not valid_signature("12345", url, params, "")
    assert not valid_signature("", url, params, expected)


def test_signature_agrees_with_the_fakes_and_tolerates_the_default_port() -> None:
    form = {"To": PHONE, "MessageStatus": "delivered", "Body": "é ✓", "AccountSid": ACCOUNT}
    url = "https://tallypass.test/sms/status"

    assert twilio_signature(TOKEN, url, form) == fake_signature(TOKEN, url, form)
    signed_with_port = fake_signature(TOKEN, "https://tallypass.test:443/sms/status", form)
    assert valid_signature(TOKEN, url, form, signed_with_port)
    assert valid_signature(TOKEN, "https://tallypass.test:443/sms/status", form, fake_signature(TOKEN, url, form))
    assert not valid_signature(TOKEN, "https://tallypass.test:8443/sms/status", form, signed_with_port)


def test_signature_covers_every_value_of_a_repeated_field() -> None:
    url = "https://tallypass.test/sms/inbound"
    form = MultiDict([("MediaUrl", "https://b.example/2"), ("Body", "hi"), ("MediaUrl", "https://a.example/1")])
    # Twilio appends each value of a repeated field, values sorted (the fake's helper takes single values)
    data = url + "Bodyhi" + "MediaUrlhttps://a.example/1" + "MediaUrlhttps://b.example/2"
    expected = base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    assert twilio_signature(TOKEN, url, form) == expected
    assert twilio_signature(TOKEN, url, {"Body": "hi", "MediaUrl": ["https://b.example/2", "https://a.example/1"]}
                            ) == expected
    assert not valid_signature(TOKEN, url, MultiDict([("Body", "hi"), ("MediaUrl", "https://a.example/1")]),
                               expected)


@pytest.mark.parametrize(
    ("params", "action"),
    [
        ({"Body": "STOP"}, "stop"), ({"Body": "  stop \n"}, "stop"), ({"Body": "StopAll"}, "stop"),
        ({"Body": "unsubscribe"}, "stop"), ({"Body": "Cancel"}, "stop"), ({"Body": "end"}, "stop"),
        ({"Body": "QUIT"}, "stop"), ({"Body": "start"}, "start"), ({"Body": "Yes"}, "start"),
        ({"Body": "UNSTOP"}, "start"), ({"Body": "help"}, "help"), ({"Body": " Info "}, "help"),
        ({"Body": "stop sending me these"}, None), ({"Body": "Thanks!"}, None), ({"Body": ""}, None), ({}, None),
        ({"Body": "ARRET", "OptOutType": "STOP"}, "stop"),  # a localised keyword the gateway recognised
        ({"Body": "hello", "OptOutType": "start"}, "start"), ({"Body": "AIDE", "OptOutType": "HELP"}, "help"),
        ({"Body": "stop", "OptOutType": "SOMETHING-NEW"}, "stop"),
    ],
)
def test_opt_out_action(params: dict[str, str], action: str | None) -> None:
    assert opt_out_action(params) == action


def test_phone_numbers_are_masked_to_their_last_four_digits() -> None:
    assert mask_phone(PHONE) == "***1234"
    assert mask_phone("+123") == "***"
    assert mask_phone(None) == "***"


# ------------------------------------------------------------------------------ the client


def test_send_stores_the_message_at_the_gateway_over_one_connection(
    gateway: FakeSmsGateway, sms_client: SmsClient
) -> None:
    callback = CALLBACK
    sent = [sms_client.send(PHONE, f"Hello {i}") for i in range(3)]

    assert all(isinstance(s, SentSms) and s.sid.startswith("SM") and s.status == "queued" for s in sent)
    stored = gateway.messages[sent[0].sid]
    assert (stored.to, stored.from_, stored.body, stored.status_callback) == (PHONE, SENDER, "Hello 0", callback)
    first = gateway.requests[0]
    assert first.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert first.form == {"To": PHONE, "From": SENDER, "Body": "Hello 0", "StatusCallback": callback}
    assert first.headers["authorization"].startswith("Basic ")
    assert gateway.connections == 1  # kept alive


def test_every_message_carries_the_configured_status_callback(
    gateway: FakeSmsGateway, sms_client: SmsClient, make_client: Callable[..., SmsClient]
) -> None:
    sms_client.send(PHONE, "Hi")
    sms_client.send(PHONE, "Hi", status_callback=None)
    assert [r.form["StatusCallback"] for r in gateway.requests] == [CALLBACK, CALLBACK]
    assert sms_client.status_callback == CALLBACK

    for bad in ("", "/sms/status", "ftp://tallypass.test/sms/status", "https://shop_1.test/sms/status",
                "https://tallypass.test/" + "x" * 4000):
        with pytest.raises(ValueError, match="status callback"):
            make_client(status_callback=bad)  # Twilio would refuse every message (21609), or never report
    with pytest.raises(ValueError, match="status callback"):
        sms_client.send(PHONE, "Hi", status_callback="/relative")
    assert len(gateway.requests) == 2


@pytest.mark.parametrize("status", [429, 503])
def test_send_is_retried_on_429_and_503(
    gateway: FakeSmsGateway, sms_client: SmsClient, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.fail(status, times=2, retry_after=0 if status == 429 else None)

    sent = sms_client.send(PHONE, "Hi")

    assert posts(gateway) == 3
    assert list(gateway.messages) == [sent.sid]
    assert len(retry_warnings(caplog)) == 2
    assert TOKEN not in caplog.text
    assert PHONE not in caplog.text and "***1234" in caplog.text


def test_unavailable_after_the_attempts(gateway: FakeSmsGateway, sms_client: SmsClient) -> None:
    gateway.fail(503, times=3)

    with pytest.raises(SmsUnavailable) as err:
        sms_client.send(PHONE, "Hi")

    assert (err.value.status, err.value.code, err.value.possibly_sent) == (503, 20500, False)
    assert posts(gateway) == 3
    assert not gateway.messages


def test_a_long_retry_after_ends_the_attempts_at_once(gateway: FakeSmsGateway, sms_client: SmsClient) -> None:
    gateway.fail(429, times=3, retry_after=120)

    with pytest.raises(SmsUnavailable) as err:
        sms_client.send(PHONE, "Hi")

    assert err.value.retry_after == 120
    assert posts(gateway) == 1


def test_a_500_is_not_repeated_as_the_message_may_exist(gateway: FakeSmsGateway, sms_client: SmsClient) -> None:
    gateway.fail(500, after_processing=True)  # the gateway created the message, then answered 500

    with pytest.raises(SmsUnavailable) as err:
        sms_client.send(PHONE, "Hi")

    assert err.value.possibly_sent and err.value.status == 500
    assert posts(gateway) == 1
    assert len(gateway.messages) == 1  # a retry would have sent the customer a second text


def test_a_refused_connection_is_retried_then_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    client = SmsClient(TwilioConfig(api_url=f"http://127.0.0.1:{port}", account_sid=ACCOUNT, auth_token=TOKEN,
                                    sender=SENDER, status_callback=CALLBACK, **FAST))
    with client, pytest.raises(SmsUnavailable) as err:
        client.send(PHONE, "Hi")
    assert not err.value.possibly_sent and err.value.status is None
    assert "after 3 attempt(s)" in str(err.value)


def test_an_invalid_number_is_refused_without_retry(gateway: FakeSmsGateway, sms_client: SmsClient,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SmsRejected) as err:
        sms_client.send("+1234", "Hi")

    assert (err.value.status, err.value.code) == (400, 21211)
    assert err.value.message == "The 'To' number +1234 is not a valid phone number."
    assert posts(gateway) == 1
    assert not retry_warnings(caplog)


def test_wrong_credentials_are_refused_and_named_without_the_token(
    gateway: FakeSmsGateway, make_client: Callable[..., SmsClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(auth_token="not-the-token-0123456789")

    with pytest.raises(SmsRejected) as err:
        client.send(PHONE, "Hi")

    assert (err.value.status, err.value.code) == (401, 20003)
    errors = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "TALLYPASS_SMS_AUTH_TOKEN" in errors[0]
    assert "not-the-token" not in caplog.text and "not-the-token" not in str(err.value)
    assert "not-the-token" not in repr(client) and TOKEN not in repr(
        TwilioConfig("http://x", ACCOUNT, TOKEN, SENDER, status_callback=CALLBACK))
    assert posts(gateway) == 1


def test_another_accounts_sid_is_refused(gateway: FakeSmsGateway, make_client: Callable[..., SmsClient]) -> None:
    gateway.account_sid = "AC" + "0" * 32  # the credentials no longer belong to the SID in the path
    with pytest.raises(SmsRejected) as err:
        make_client().send(PHONE, "Hi")
    assert err.value.status == 401


@pytest.mark.parametrize("body", ["", "   ", "x" * 1601])
def test_bodies_the_gateway_would_refuse_are_caught_before_sending(
    gateway: FakeSmsGateway, sms_client: SmsClient, body: str
) -> None:
    with pytest.raises(ValueError, match="body"):
        sms_client.send(PHONE, body)
    assert not gateway.requests


def test_build_sms_client_only_with_a_complete_twilio_configuration(settings: Settings) -> None:
    assert build_sms_client(settings.model_copy(update={"sms_provider": "outbox"})) is None
    assert build_sms_client(settings.model_copy(update={"sms_auth_token": None})) is None
    assert build_sms_client(settings.model_copy(update={"sms_from": None})) is None
    client = build_sms_client(settings)
    assert isinstance(client, SmsClient) and client.sender == SENDER
    assert client.status_callback == sms.status_callback_url(settings.base_url) == CALLBACK
    client.close()


# ------------------------------------------------------------------------------ send_sms


def test_send_sms_records_the_message_with_the_gateways_sid(
    gateway: FakeSmsGateway, sms_client: SmsClient, settings: Settings, db_session: Session, customer: Customer
) -> None:
    now = utcnow()
    message = send(db_session, sms_client, settings, customer_id=customer.id, now=now)

    assert message.id is not None
    assert (message.to, message.sender, message.customer_id, message.status) == (PHONE, SENDER, customer.id,
                                                                                "queued")
    assert message.provider_sid in gateway.messages and message.created_at == now
    remote = gateway.messages[message.provider_sid]
    assert (remote.to, remote.from_, remote.body) == (PHONE, SENDER, "Double points this weekend at Bean Co")
    assert remote.status_callback == "https://tallypass.test/sms/status"


def test_send_sms_after_a_429(gateway: FakeSmsGateway, sms_client: SmsClient, settings: Settings,
                              db_session: Session) -> None:
    gateway.fail(429, retry_after=0)
    message = send(db_session, sms_client, settings)
    assert message.status == "queued" and posts(gateway) == 2


def test_send_sms_lets_an_unavailable_gateway_propagate(
    gateway: FakeSmsGateway, sms_client: SmsClient, settings: Settings, db_session: Session
) -> None:
    gateway.fail(503, times=3)
    with pytest.raises(SmsUnavailable):
        send(db_session, sms_client, settings)
    assert db_session.scalar(select(func.count()).select_from(SmsMessage)) == 0


def test_send_sms_records_a_refusal_as_failed_without_retry(
    gateway: FakeSmsGateway, sms_client: SmsClient, settings: Settings, db_session: Session
) -> None:
    message = send(db_session, sms_client, settings, to="+1234")

    assert (message.status, message.error_code, message.provider_sid) == ("failed", "21211", None)
    assert posts(gateway) == 1
    assert opt_outs(db_session) == []


def test_an_unsubscribed_recipient_is_recorded_as_opted_out(
    gateway: FakeSmsGateway, sms_client: SmsClient, settings: Settings, db_session: Session
) -> None:
    gateway.opt_outs.add((PHONE, SENDER))  # a STOP the service never heard of

    first = send(db_session, sms_client, settings)
    second = send(db_session, sms_client, settings)

    assert (first.status, first.error_code) == ("failed", "21610")
    assert opt_outs(db_session) == [(PHONE, SENDER)]
    assert (second.status, second.error_code, second.provider_sid) == ("skipped", "opted-out", None)
    assert posts(gateway) == 1


def test_without_a_gateway_the_message_goes_to_the_channel_outbox(
    gateway: FakeSmsGateway, settings: Settings, db_session: Session, customer: Customer
) -> None:
    now = utcnow()
    message = send(db_session, None, settings, customer_id=customer.id, now=now)

    assert (message.status, message.provider_sid, message.customer_id) == ("outbox", None, customer.id)
    recorded = db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "sms")).one()
    assert recorded.recipient == PHONE
    assert recorded.payload == {"from": SENDER, "body": "Double points this weekend at Bean Co"}
    assert recorded.created_at == now
    assert not gateway.requests


def test_send_sms_refuses_a_client_of_another_sender(sms_client: SmsClient, db_session: Session) -> None:
    with pytest.raises(ValueError, match="another number"):
        sms.send_sms(db_session, to=PHONE, body="Hi", sender="+15005550001", client=sms_client)


# ------------------------------------------------------------------------------ status callbacks


@pytest.fixture
def sent(twilio: FakeSmsGateway, sms_client: SmsClient, settings: Settings, db_session: Session) -> SmsMessage:
    return send(db_session, sms_client, settings)


def status_of(db_session: Session, message: SmsMessage) -> tuple[str, str | None]:
    db_session.refresh(message)
    return message.status, message.error_code


def test_status_callbacks_move_the_message_to_delivered(
    twilio: FakeSmsGateway, sent: SmsMessage, db_session: Session
) -> None:
    before = sent.updated_at
    assert twilio.deliver_status(sent.provider_sid, "sent") == 204
    assert status_of(db_session, sent) == ("sent", None)

    assert twilio.deliver_status(sent.provider_sid, "delivered") == 204

    assert status_of(db_session, sent) == ("delivered", None)
    assert sent.updated_at > before


def test_a_late_callback_never_moves_a_terminal_status_back(
    twilio: FakeSmsGateway, sent: SmsMessage, db_session: Session
) -> None:
    assert twilio.deliver_status(sent.provider_sid, "delivered") == 204
    assert twilio.deliver_status(sent.provider_sid, "sent") == 204  # arrived out of order
    assert twilio.deliver_status(sent.provider_sid, "undelivered", error_code=30005) == 204

    assert status_of(db_session, sent) == ("delivered", None)


def test_an_undelivered_message_keeps_the_error_code(
    twilio: FakeSmsGateway, sent: SmsMessage, db_session: Session
) -> None:
    assert twilio.deliver_status(sent.provider_sid, "undelivered", error_code=30005) == 204
    assert status_of(db_session, sent) == ("undelivered", "30005")


def status_form(message: SmsMessage, status: str = "delivered") -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "ApiVersion": "2010-04-01", "From": SENDER, "MessageSid": message.provider_sid,
            "MessageStatus": status, "SmsSid": message.provider_sid, "SmsStatus": status, "To": PHONE}


@pytest.mark.parametrize(
    "signature",
    [
        lambda form: fake_signature("some-other-token", "https://tallypass.test/sms/status", form),
        lambda form: fake_signature(TOKEN, "http://localhost/sms/status", form),  # request.url behind the proxy
        lambda form: fake_signature(TOKEN, "https://tallypass.test/sms/status", {**form, "MessageStatus": "sent"}),
        lambda form: "GvWf1cFY/Q7PnoempGyD5oXAezc=",
    ],
    ids=["other-token", "internal-url", "tampered-field", "foreign-signature"],
)
def test_a_bad_signature_is_403_and_changes_nothing(
    client: FlaskClient, sent: SmsMessage, db_session: Session, signature: Callable[[dict[str, str]], str]
) -> None:
    form = status_form(sent)
    response = client.post("/sms/status", data=form, headers={"X-Twilio-Signature": signature(form)})

    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("/bad-signature") and response.json["status"] == 403
    assert status_of(db_session, sent) == ("queued", None)


@pytest.mark.parametrize("signed_url", ["https://tallypass.test:8443/sms/status", "https://tallypass.test/sms/status"],
                         ids=["with-port", "port-removed"])
def test_behind_a_public_url_with_a_port_either_signature_is_accepted(
    app_with: Callable[..., Flask], sent: SmsMessage, db_session: Session, signed_url: str
) -> None:
    """TALLYPASS_BASE_URL with a non-default port: Twilio may sign the URL with it or without it."""
    other = mount(app_with(base_url="https://tallypass.test:8443")).test_client()
    form = status_form(sent)
    response = other.post("/sms/status", data=form, headers={"X-Twilio-Signature": fake_signature(
        TOKEN, signed_url, form)})
    assert response.status_code == 204
    assert status_of(db_session, sent) == ("delivered", None)
    wrong_port = fake_signature(TOKEN, "https://tallypass.test:443/sms/status", form)
    assert other.post("/sms/status", data=form, headers={"X-Twilio-Signature": wrong_port}).status_code == 403


def test_a_webhook_that_is_not_form_encoded_is_400(client: FlaskClient, twilio: FakeSmsGateway) -> None:
    body = '{"MessageSid": "SM1", "MessageStatus": "delivered"}'
    url = "https://tallypass.test/sms/status?bodySHA256=" + hashlib.sha256(body.encode()).hexdigest()
    response = client.post(url.removeprefix("https://tallypass.test"), data=body, content_type="application/json",
                           headers={"X-Twilio-Signature": twilio.sign(url, {})})
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("/not-form-encoded")


def test_a_missing_signature_is_403(client: FlaskClient, sent: SmsMessage, db_session: Session) -> None:
    response = client.post("/sms/status", data=status_form(sent), headers={"Accept": "text/html"})

    assert response.status_code == 403 and response.mimetype == "application/problem+json"
    assert status_of(db_session, sent) == ("queued", None)


def test_a_signed_callback_for_an_unknown_message_is_accepted_and_ignored(
    client: FlaskClient, twilio: FakeSmsGateway, db_session: Session
) -> None:
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "To": PHONE, "From": SENDER}
    response = client.post("/sms/status", data=form,
                           headers={"X-Twilio-Signature": twilio.sign("https://tallypass.test/sms/status", form)})

    assert response.status_code == 204
    assert not sms.record_status(db_session, sid="SM" + "0" * 32, status="delivered", error_code=None, now=utcnow())


def test_a_signed_callback_without_a_sid_is_400(client: FlaskClient, twilio: FakeSmsGateway) -> None:
    form = {"MessageStatus": "delivered"}
    response = client.post("/sms/status", data=form,
                           headers={"X-Twilio-Signature": twilio.sign("https://tallypass.test/sms/status", form)})
    assert response.status_code == 400 and response.json["type"].endswith("/missing-field")


@pytest.mark.parametrize("changes", [{"sms_provider": "outbox"}, {"sms_auth_token": None}],
                         ids=["outbox", "no-token"])
def test_without_a_gateway_the_webhooks_are_404(app_with: Callable[..., Flask], changes: dict[str, Any]) -> None:
    other = mount(app_with(**changes)).test_client()
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    headers = {"X-Twilio-Signature": fake_signature(TOKEN, "https://tallypass.test/sms/status", form)}

    for path in ("/sms/status", "/sms/inbound"):
        response = other.post(path, data=form, headers=headers)
        assert response.status_code == 404 and response.mimetype == "application/problem+json"


# ------------------------------------------------------------------------------ STOP and START


@pytest.mark.parametrize(("body", "opt_out_type"), [("ARRET", "STOP"), ("  stop ", None)],
                         ids=["OptOutType", "plain-body"])
def test_inbound_stop_opts_out_and_withdraws_sms_consent(
    twilio: FakeSmsGateway, client: FlaskClient, sms_client: SmsClient, settings: Settings, db_session: Session,
    customer: Customer, body: str, opt_out_type: str | None,
) -> None:
    assert sms_consent(db_session, customer).granted
    before = utcnow()

    assert twilio.inbound(PHONE, SENDER, body, opt_out_type) == 200

    after = utcnow()
    delivery = twilio.deliveries[-1]
    assert (delivery.form.get("OptOutType"), delivery.form["Body"]) == (opt_out_type, body)
    assert opt_outs(db_session) == [(PHONE, SENDER)]
    consent = sms_consent(db_session, customer)
    assert (consent.granted, consent.source) == (False, "sms-stop")
    assert before <= consent.changed_at <= after

    requests = len(twilio.requests)
    skipped = send(db_session, sms_client, settings, customer_id=customer.id)
    assert (skipped.status, skipped.error_code, skipped.provider_sid) == ("skipped", "opted-out", None)
    assert len(twilio.requests) == requests  # no request at all


def test_inbound_answers_empty_twiml(twilio: FakeSmsGateway, client: FlaskClient) -> None:
    form = {"From": PHONE, "To": SENDER, "Body": "STOP", "MessageSid": "SM" + "1" * 32}
    response = client.post("/sms/inbound", data=form,
                           headers={"X-Twilio-Signature": twilio.sign("https://tallypass.test/sms/inbound", form)})

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == EMPTY_TWIML


def test_start_lifts_the_opt_out_and_grants_sms_consent_again(
    twilio: FakeSmsGateway, sms_client: SmsClient, settings: Settings, db_session: Session, customer: Customer
) -> None:
    assert twilio.inbound(PHONE, SENDER, "STOP") == 200
    assert twilio.inbound(PHONE, SENDER, "start") == 200

    assert opt_outs(db_session) == []
    consent = sms_consent(db_session, customer)
    assert (consent.granted, consent.source) == (True, "sms-start")
    message = send(db_session, sms_client, settings, customer_id=customer.id)
    assert message.status == "queued" and message.provider_sid in twilio.messages


def test_a_repeated_stop_is_one_opt_out(twilio: FakeSmsGateway, db_session: Session, customer: Customer) -> None:
    assert twilio.inbound(PHONE, SENDER, "STOP") == 200
    first = sms_consent(db_session, customer).changed_at
    assert twilio.inbound(PHONE, SENDER, "unsubscribe") == 200  # or the gateway retrying the webhook

    assert opt_outs(db_session) == [(PHONE, SENDER)]
    assert sms_consent(db_session, customer).changed_at == first  # unchanged answers keep their time


@pytest.mark.parametrize("body", ["HELP", "What are your opening hours?"])
def test_help_and_other_texts_store_nothing(
    twilio: FakeSmsGateway, db_session: Session, customer: Customer, body: str
) -> None:
    assert twilio.inbound(PHONE, SENDER, body) == 200

    assert opt_outs(db_session) == []
    consent = sms_consent(db_session, customer)
    assert (consent.granted, consent.source) == (True, "pos")


def test_stop_from_a_number_without_a_customer_still_opts_out(
    twilio: FakeSmsGateway, db_session: Session
) -> None:
    assert twilio.inbound(OTHER, SENDER, "STOP") == 200

    assert opt_outs(db_session) == [(OTHER, SENDER)]
    assert db_session.scalar(select(func.count()).select_from(Consent)) == 0


def test_an_opt_out_is_per_sender(twilio: FakeSmsGateway, db_session: Session, settings: Settings,
                                  make_client: Callable[..., SmsClient]) -> None:
    other_sender = "+15005550009"
    twilio.numbers = {SENDER, other_sender}
    assert twilio.inbound(PHONE, SENDER, "STOP") == 200

    message = sms.send_sms(db_session, to=PHONE, body="Hi", sender=other_sender,
                           client=make_client(sender=other_sender))

    assert message.status == "queued"


def test_an_unsigned_stop_is_refused_and_stores_nothing(
    client: FlaskClient, db_session: Session, customer: Customer
) -> None:
    form = {"From": PHONE, "To": SENDER, "Body": "STOP"}
    response = client.post("/sms/inbound", data=form,
                           headers={"X-Twilio-Signature": fake_signature("guess", "https://tallypass.test/sms/inbound",
                                                                         form)})

    assert response.status_code == 403
    assert opt_outs(db_session) == []
    assert sms_consent(db_session, customer).granted


def test_handle_inbound_records_the_time_it_is_given(db_session: Session, customer: Customer) -> None:
    now = utcnow() - timedelta(minutes=5)

    action = sms.handle_inbound(db_session, from_=PHONE, to=SENDER, params={"Body": "quit"}, now=now)

    assert action == "stop"
    consent = sms_consent(db_session, customer)
    assert (consent.granted, consent.source, consent.changed_at) == (False, "sms-stop", now)
    assert db_session.scalars(select(SmsOptOut)).one().created_at == now


# ------------------------------------------------------------------------------ campaign texts report back

NOON_UTC = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
THIRD = "+37369009999"


def campaign_for(db_session: Session, make_program: Callable[..., Any], make_card: Callable[..., Any],
                 phones: list[str], body: str = "Hi {{ first_name }}, double points this weekend") -> Campaign:
    """A running SMS campaign to a customer per phone (SMS consent, noon in their zone)."""
    program = make_program(name="Cafea")
    for n, phone in enumerate(phones):
        card = make_card(program, phone=phone, name=f"Ana{n} Popescu", consents={"sms": True})
        card.customer.timezone = "UTC"
    campaign = lifecycle.create(db_session, program=program, name="Weekend", channels=["sms"],
                                variants=[VariantSpec("A", body)], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC, sms_sender=SENDER)
    return campaign


def send_campaign(app: Flask, db_session: Session, campaign: Campaign, settings: Settings) -> list[Delivery]:
    """One batch through the channels the Celery sender builds (``campaign_channels``), in this transaction."""
    with app.app_context():
        channels = campaign_channels()
    send_batch(db_session, campaign_id=campaign.id, channels=channels, base_url=settings.base_url, now=NOON_UTC)
    return list(db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)
                                   .order_by(Delivery.id)))


def test_a_campaign_text_asks_for_and_records_its_delivery_report(
    twilio: FakeSmsGateway, app: Flask, settings: Settings, db_session: Session,
    make_program: Callable[..., Any], make_card: Callable[..., Any],
) -> None:
    campaign = campaign_for(db_session, make_program, make_card, [PHONE, OTHER, THIRD])
    ok, undelivered, failed = send_campaign(app, db_session, campaign, settings)
    assert [d.status for d in (ok, undelivered, failed)] == ["sent"] * 3
    assert {twilio.messages[d.provider_id].status_callback for d in (ok, undelivered, failed)} == {CALLBACK}

    # the gateway reports, signed, to the StatusCallback each text carried
    assert twilio.deliver_status(ok.provider_id, "sent") == 204
    assert twilio.deliver_status(ok.provider_id, "delivered") == 204
    assert twilio.deliver_status(undelivered.provider_id, "undelivered", error_code=30003) == 204
    assert twilio.deliver_status(failed.provider_id, "failed", error_code=30008) == 204

    db_session.expire_all()
    assert [(d.status, d.error) for d in (ok, undelivered, failed)] == [
        ("delivered", None), ("failed", "sms undelivered: 30003"), ("failed", "sms failed: 30008")]
    texts = {m.provider_sid: m for m in db_session.scalars(select(SmsMessage))}
    assert [(texts[d.provider_id].status, texts[d.provider_id].error_code) for d in (ok, undelivered, failed)] == [
        ("delivered", None), ("undelivered", "30003"), ("failed", "30008")]
    assert results(db_session, campaign=campaign).by_status == {"delivered": 1, "failed": 2}
    assert not db_session.scalars(select(SmsStatusReport)).all()


def test_a_report_that_comes_before_its_text_is_recorded_is_applied_later(
    twilio: FakeSmsGateway, sms_client: SmsClient, db_session: Session, customer: Customer,
    make_program: Callable[..., Any],
) -> None:
    campaign = lifecycle.create(db_session, program=make_program(), name="Early", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    card = customer.cards[0]
    sent = sms_client.send(PHONE, "Hello")  # the text left; its batch has not committed yet
    assert twilio.deliver_status(sent.sid, "sent") == 204
    assert twilio.deliver_status(sent.sid, "undelivered", error_code=30005) == 204
    assert twilio.deliver_status(sent.sid, "delivered") == 204  # out of order
    assert [(r.status, r.error_code) for r in db_session.scalars(select(SmsStatusReport).order_by(
        SmsStatusReport.id))] == [("sent", None), ("undelivered", "30005"), ("delivered", None)]

    now = utcnow()
    assert sms.apply_early_reports(db_session, now=now) == 0  # nothing to apply them to yet
    # the batch commits: its text and its delivery now carry the sid
    db_session.add(SmsMessage(to=PHONE, sender=SENDER, body="Hello", provider_sid=sent.sid, status="queued",
                              customer_id=customer.id, created_at=now, updated_at=now))
    db_session.add(Delivery(campaign_id=campaign.id, customer_id=customer.id, card_id=card.id, status="sent",
                            channel="sms", provider_id=sent.sid, sent_at=now))
    db_session.flush()

    assert sms.apply_early_reports(db_session, now=now) == 3
    db_session.expire_all()
    text = db_session.scalars(select(SmsMessage).where(SmsMessage.provider_sid == sent.sid)).one()
    delivery = db_session.scalars(select(Delivery).where(Delivery.provider_id == sent.sid)).one()
    assert (text.status, text.error_code) == ("undelivered", "30005")  # the first terminal status stays
    assert (delivery.status, delivery.error) == ("failed", "sms undelivered: 30005")
    assert not db_session.scalars(select(SmsStatusReport)).all()
    assert sms.apply_early_reports(db_session, now=now) == 0  # each once


def test_reports_that_never_find_their_text_are_dropped_after_a_day(
    twilio: FakeSmsGateway, sms_client: SmsClient, db_session: Session
) -> None:
    sent = sms_client.send(PHONE, "Sent by another application on the account")
    assert twilio.deliver_status(sent.sid, "delivered") == 204
    assert sms.apply_early_reports(db_session, now=utcnow() + timedelta(hours=23)) == 0
    assert len(db_session.scalars(select(SmsStatusReport)).all()) == 1
    assert sms.apply_early_reports(db_session, now=utcnow() + sms.KEEP_EARLY_REPORTS + timedelta(minutes=1)) == 0
    assert not db_session.scalars(select(SmsStatusReport)).all()


@pytest.mark.committing
def test_reports_racing_a_campaign_batch_reach_its_deliveries(
    gateway: FakeSmsGateway, committing_app: Flask, settings: Settings
) -> None:
    """On PostgreSQL with real commits: the gateway reports while the batch that sent the texts has not
    committed (as with a real gateway: a batch commits after its last text, reports come within seconds).
    The reports are kept, and the beat's task applies them once the batch has committed."""
    factory = committing_app.extensions[SESSIONS]
    gateway.deliver = flask_deliverer(committing_app.test_client())
    with factory.begin() as session:
        program = Program(slug="race", name="Race", point_value=1, redeem_cap_percent=50)
        session.add(program)
        session.flush()
        session.add(Tier(program_id=program.id, name="Member", qualifying_spend=0, earn_percent=5))
        for phone in (PHONE, OTHER):
            card = enrollment.enrol(session, program=program, phone=phone, name="Ana Popescu",
                                    consents={"sms": True}).card
            card.customer.timezone = "UTC"
        campaign = lifecycle.create(session, program=program, name="Race", channels=["sms"],
                                    variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
        lifecycle.start(session, campaign=campaign, now=NOON_UTC, sms_sender=SENDER)
        campaign_id = campaign.id
    with committing_app.app_context():
        channels = campaign_channels()
        with factory() as sender:
            send_batch(sender, campaign_id=campaign_id, channels=channels, base_url=settings.base_url, now=NOON_UTC)
            sids = list(sender.scalars(select(Delivery.provider_id).where(Delivery.campaign_id == campaign_id)
                                       .order_by(Delivery.id)))
            # the batch's transaction is still open: the gateway reports now
            assert gateway.deliver_status(sids[0], "delivered") == 204
            assert gateway.deliver_status(sids[1], "failed", error_code=30006) == 204
            sender.commit()
        with factory() as session:
            assert sorted(session.scalars(select(Delivery.status).where(Delivery.campaign_id == campaign_id))) == [
                "sent", "sent"]  # the webhook could not see the texts yet
            assert len(session.scalars(select(SmsStatusReport)).all()) == 2
        assert apply_early_sms_reports.delay().result == 2  # the beat a minute later (.get() may refuse: eager)
    with factory() as session:
        rows = session.execute(select(Delivery.provider_id, Delivery.status, Delivery.error)
                               .where(Delivery.campaign_id == campaign_id)).all()
        assert sorted(rows) == sorted([(sids[0], "delivered", None), (sids[1], "failed", "sms failed: 30006")])
        texts = dict(session.execute(select(SmsMessage.provider_sid, SmsMessage.status)).all())
        assert texts == {sids[0]: "delivered", sids[1]: "failed"}
        assert not session.scalars(select(SmsStatusReport)).all()


# ------------------------------------------------------------------------------ as the official library sends

def form_pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The official library's form data as (field, value) pairs: a list value is the field once per item."""
    return sorted((name, str(item)) for name, value in data.items()
                  for item in (value if isinstance(value, list) else [value]))


def assert_sent_as_the_official_library_sends(recorded: RecordedRequest, **create: Any) -> None:
    official = official_request(ACCOUNT, TOKEN, **create)
    assert recorded.method == official.method == "POST"
    assert recorded.path == urlsplit(official.url).path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert urlsplit(official.url).netloc == urlsplit(Settings.model_fields["sms_api_url"].default).netloc
    scheme, _, credentials = recorded.headers["authorization"].partition(" ")
    assert scheme == "Basic" and tuple(base64.b64decode(credentials).decode().split(":", 1)) == official.auth
    assert recorded.headers["content-type"] == official.headers["Content-Type"]
    assert sorted(recorded.fields) == form_pairs(official.data)


def test_a_campaign_text_is_the_request_twilios_library_makes(
    gateway: FakeSmsGateway, app: Flask, settings: Settings, db_session: Session,
    make_program: Callable[..., Any], make_card: Callable[..., Any],
) -> None:
    campaign = campaign_for(db_session, make_program, make_card, [PHONE])
    send_campaign(app, db_session, campaign, settings)

    [recorded] = [r for r in gateway.requests if r.method == "POST"]
    assert_sent_as_the_official_library_sends(recorded, to=PHONE, from_=SENDER, status_callback=CALLBACK,
                                              body="Hi Ana0, double points this weekend")


def test_a_one_time_code_is_the_request_twilios_library_makes(
    gateway: FakeSmsGateway, client: FlaskClient, make_program: Callable[..., Any], make_card: Callable[..., Any],
) -> None:
    program = make_program(name="Cafea")
    make_card(program, phone=PHONE)
    url = f"/join/{program.slug}"
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)  # type: ignore[union-attr]
    response = client.post(url, data={"csrf_token": token, "name": "Ana", "phone": PHONE})
    assert response.status_code == 303 and response.headers["Location"].endswith("/verify")

    [recorded] = [r for r in gateway.requests if r.method == "POST"]
    code = re.fullmatch(r"Your Cafea code: (\d{6})", recorded.form["Body"]).group(1)  # type: ignore[union-attr]
    assert_sent_as_the_official_library_sends(recorded, to=PHONE, from_=SENDER, status_callback=CALLBACK,
                                              body=f"Your Cafea code: {code}")


# ------------------------------------------------------------------------------ production without a gateway


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, app_with: Callable[..., Flask]) -> Callable[..., Flask]:
    """An app as production builds it (without touching this process's logging setup)."""
    monkeypatch.setattr(log_setup, "configure_logging", lambda *_: None)
    return lambda **changes: app_with(env="production", **changes)


OUTBOX_WARNING = "SMS is off: "


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"sms_provider": "outbox"}, "TALLYPASS_SMS_PROVIDER is outbox"),
     ({"sms_auth_token": None}, "TALLYPASS_SMS_PROVIDER is twilio but TALLYPASS_SMS_AUTH_TOKEN is unset"),
     ({"sms_account_sid": None, "sms_from": None},
      "TALLYPASS_SMS_PROVIDER is twilio but TALLYPASS_SMS_ACCOUNT_SID, TALLYPASS_SMS_FROM are unset"),
     ({"sms_api_url": "ftp://api.twilio.com"}, "the SMS settings are unusable")],
    ids=["outbox", "no-token", "no-sid-nor-sender", "bad-url"],
)
def test_production_warns_loudly_when_texts_only_reach_the_outbox(
    production: Callable[..., Flask], db_session: Session, caplog: pytest.LogCaptureFixture,
    make_program: Callable[..., Any], changes: dict[str, Any], reason: str,
) -> None:
    make_program(name="Cafea")
    caplog.set_level(logging.WARNING)
    app = production(**changes)  # it starts: a shop may run without SMS on purpose

    [line] = [r for r in caplog.records if r.name == "app.web.sms" and r.levelno == logging.WARNING]
    message = line.getMessage()
    assert message.startswith(f"{OUTBOX_WARNING}{reason}")
    assert "one-time code that never reaches them" in message and "/join/<programme>" in message
    assert TOKEN not in caplog.text and ACCOUNT not in caplog.text and SENDER not in caplog.text

    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"  # production's session cookie is Secure
    sign_in_as(client, db_session, role="viewer")  # every signed-in role sees it, on every page
    for page in ("/dashboard/", "/dashboard/campaigns", "/dashboard/segments"):
        html = client.get(page).text
        assert 'role="alert"' in html and html.count('class="dash-flash dash-flash-error operator-warning"') == 1
        assert "Configuration problem:" in html and reason in html, page
    client.post("/dashboard/logout", data={"csrf_token": csrf(client, "/dashboard/")})
    assert "operator-warning" not in client.get("/dashboard/login").text  # nothing for the public


@pytest.mark.parametrize("env", ["production", "development", "testing"])
def test_no_warning_with_a_gateway_or_outside_production(
    production: Callable[..., Flask], app_with: Callable[..., Flask], caplog: pytest.LogCaptureFixture, env: str,
) -> None:
    caplog.set_level(logging.WARNING)
    if env == "production":
        production()  # twilio, completely configured
    else:
        app_with(env=env, sms_provider="outbox")
    assert not [r for r in caplog.records if OUTBOX_WARNING in r.getMessage()]
