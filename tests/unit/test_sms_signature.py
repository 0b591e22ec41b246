"""``X-Twilio-Signature`` checking (``app.channels.sms.valid_signature``) against Twilio's own validator,
``twilio.request_validator.RequestValidator`` from the official library: for every request, ours must say
yes exactly when Twilio's says yes, above all for a public URL with a port (Twilio signs it with the port
or without it, and its validator tries both), and never accept what it refuses.

Each signature below is made by ``RequestValidator.compute_signature``, never by the code under test.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from app.channels.sms import _url_variants, valid_signature

TOKEN = "tw-auth-token-0123456789abcdef0123"  # noqa: S105 (a test credential)
FORM = {"AccountSid": "AC" + "5a1e" * 8, "MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered",
        "To": "+37369001234", "Body": "é ✓"}
TWILIO = RequestValidator(TOKEN)


def twilio_accepts(url: str, params: Any, signature: str) -> bool:
    """RequestValidator.validate's answer; it raises for some inputs (a port that is not a number, a JSON body
    without bodySHA256), which is a refusal too."""
    try:
        return bool(TWILIO.validate(url, params, signature))
    except (ValueError, TypeError):
        return False


def with_netloc(url: str, netloc: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=netloc))


def host_of(url: str) -> str:
    return urlsplit(url).netloc.rpartition(":")[0] if urlsplit(url).port else urlsplit(url).netloc


# What Twilio may have signed, derived from the URL our webhook computes (TALLYPASS_BASE_URL + path + query).
SIGNED_AS = {
    "as-given": lambda url: url,
    "port-removed": lambda url: with_netloc(url, host_of(url)),
    "default-port-443": lambda url: with_netloc(url, host_of(url) + ":443"),
    "default-port-80": lambda url: with_netloc(url, host_of(url) + ":80"),
    "other-port": lambda url: with_netloc(url, host_of(url) + ":9443"),
    "other-scheme": lambda url: ("http" if url.startswith("https") else "https") + url[url.index(":"):],
    "other-path": lambda url: url.replace("/sms/", "/sms/x/"),
    "query-dropped": lambda url: url.split("?")[0],
}

URLS = [
    "https://tallypass.test/sms/status",
    "https://tallypass.test:443/sms/status",
    "https://tallypass.test:8443/sms/status",  # a public URL with a non-default port
    "http://tallypass.test/sms/status",
    "http://tallypass.test:80/sms/status",
    "http://tallypass.test:8080/sms/status",
    "http://tallypass.test:443/sms/status",  # https's default port on http: not a default here
    "https://tallypass.test:80/sms/status",
    "https://tallypass.test:8443/sms/status?shop=1&lang=ro",
    "https://tallypass.test/sms/inbound?a=1&a=2&b=%20c",
    "http://tallypass.test:8080/sms/inbound?x=",
    "https://tallypass.test/sms/status?",  # the empty query disappears in Twilio's validator
    "HTTPS://Tallypass.Test:8443/sms/status",  # the scheme is lower-cased by it, the host is not
    "https://tallypass.test:0/sms/status",  # port 0 counts as no port there
    "https://[2001:db8::1]:8443/sms/status",
]


@pytest.mark.parametrize("signed_as", list(SIGNED_AS))
@pytest.mark.parametrize("url", URLS)
def test_valid_signature_agrees_with_twilios_request_validator(url: str, signed_as: str) -> None:
    signed_url = SIGNED_AS[signed_as](url)
    signature = TWILIO.compute_signature(signed_url, FORM)

    assert valid_signature(TOKEN, url, FORM, signature) is twilio_accepts(url, FORM, signature)
    assert valid_signature(TOKEN, url, MultiDict(FORM), signature) is twilio_accepts(url, FORM, signature)


@pytest.mark.parametrize(
    ("url", "signed_url", "accepted"),
    [
        # the finding: behind a public URL with a port, Twilio may sign the URL without it
        ("https://tallypass.test:8443/sms/status", "https://tallypass.test/sms/status", True),
        ("https://tallypass.test:8443/sms/status", "https://tallypass.test:8443/sms/status", True),
        ("https://tallypass.test:8443/sms/status", "https://tallypass.test:443/sms/status", False),
        ("https://tallypass.test:8443/sms/status?a=1", "https://tallypass.test/sms/status?a=1", True),
        ("https://tallypass.test/sms/status", "https://tallypass.test:443/sms/status", True),
        ("https://tallypass.test/sms/status", "https://tallypass.test:8443/sms/status", False),
        ("https://tallypass.test:443/sms/status", "https://tallypass.test/sms/status", True),
        ("http://tallypass.test/sms/status", "http://tallypass.test:80/sms/status", True),
        ("http://tallypass.test/sms/status", "http://tallypass.test:443/sms/status", False),
        ("http://tallypass.test:8080/sms/status", "http://tallypass.test/sms/status", True),
        ("http://tallypass.test:8080/sms/status", "http://tallypass.test:80/sms/status", False),
    ],
)
def test_ports_are_handled_as_twilio_handles_them(url: str, signed_url: str, accepted: bool) -> None:
    signature = TWILIO.compute_signature(signed_url, FORM)
    assert twilio_accepts(url, FORM, signature) is accepted  # what Twilio's validator does…
    assert valid_signature(TOKEN, url, FORM, signature) is accepted  # …is what ours does


def test_the_candidate_urls_are_twilios() -> None:
    from urllib.parse import urlparse

    from twilio.request_validator import add_port, remove_port

    for url in URLS:
        parsed = urlparse(url)
        assert _url_variants(url) == [remove_port(parsed), add_port(parsed)]


@pytest.mark.parametrize(
    "mangle",
    [lambda s: " " + s, lambda s: s + "\n", lambda s: s.lower(), lambda s: s[:-1], lambda s: "", lambda s: s + "="],
    ids=["leading-space", "trailing-newline", "lower-case", "truncated", "empty", "padded"],
)
def test_a_signature_is_compared_exactly(mangle: Any) -> None:
    url = "https://tallypass.test/sms/status"
    signature = mangle(TWILIO.compute_signature(url, FORM))
    assert valid_signature(TOKEN, url, FORM, signature) is twilio_accepts(url, FORM, signature) is False


def test_a_missing_signature_or_token_is_never_valid() -> None:
    url = "https://tallypass.test/sms/status"
    assert not valid_signature(TOKEN, url, FORM, None)  # Twilio's validator raises TypeError here
    empty_key = RequestValidator("").compute_signature(url, FORM)
    assert not valid_signature("", url, FORM, empty_key)  # stricter than Twilio's: we never run without a token


def test_a_port_that_is_not_a_number_is_refused() -> None:
    url = "https://tallypass.test:99999/sms/status"
    signature = TWILIO.compute_signature(url, FORM)
    assert not valid_signature(TOKEN, url, FORM, signature)
    with pytest.raises(ValueError):
        TWILIO.validate(url, FORM, signature)


@pytest.mark.parametrize("tamper", ["none", "body", "hash", "no-hash"])
def test_a_json_body_is_checked_through_body_sha256(tamper: str) -> None:
    body = json.dumps({"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"})
    digest = hashlib.sha256(body.encode()).hexdigest()
    url = "https://tallypass.test:8443/sms/status" + ("" if tamper == "no-hash" else f"?bodySHA256={digest}")
    signature = TWILIO.compute_signature(url, {})
    sent = body.replace("delivered", "failed") if tamper == "body" else body
    if tamper == "hash":
        url = url.replace(digest, "0" * 64)
        signature = TWILIO.compute_signature(url, {})

    expected = tamper == "none"
    assert valid_signature(TOKEN, url, sent, signature) is expected
    assert twilio_accepts(url, sent, signature) is expected


def test_a_repeated_field_is_signed_with_each_value() -> None:
    url = "https://tallypass.test/sms/inbound"
    form = MultiDict([("MediaUrl", "https://b.example/2"), ("Body", "hi"), ("MediaUrl", "https://a.example/1")])
    signature = TWILIO.compute_signature(url, form)
    assert valid_signature(TOKEN, url, form, signature) is twilio_accepts(url, form, signature) is True
    fewer = MultiDict([("Body", "hi"), ("MediaUrl", "https://a.example/1")])
    assert valid_signature(TOKEN, url, fewer, signature) is twilio_accepts(url, fewer, signature) is False


# ------------------------------------------------------------------------------ any URL, any signature

_hosts = st.sampled_from(["tallypass.test", "Shop.Example", "127.0.0.1", "[::1]", "user:pw@tallypass.test"])
_ports = st.sampled_from(["", ":0", ":80", ":443", ":8443", ":65535", ":99999", ":x", ":"])
_paths = st.sampled_from(["", "/", "/sms/status", "/sms/inbound;v=1", "/a%20b"])
_queries = st.sampled_from(["", "?", "?a=1", "?a=1&a=2", "?bodySHA256=abc", "?x=%C3%A9"])
_fragments = st.sampled_from(["", "#", "#rc=3"])
_urls = st.builds(lambda scheme, host, port, path, query, fragment: f"{scheme}://{host}{port}{path}{query}{fragment}",
                  st.sampled_from(["http", "https", "HTTPS", "ftp"]), _hosts, _ports, _paths, _queries, _fragments)
_forms = st.dictionaries(st.sampled_from(["Body", "From", "MessageSid", "To", "ErrorCode"]),
                         st.text(max_size=8), max_size=4)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(url=_urls, signed_url=_urls, params=_forms, as_json=st.booleans())
def test_any_request_gets_twilios_answer(url: str, signed_url: str, params: dict[str, str], as_json: bool) -> None:
    body: Any = json.dumps(params) if as_json else params
    for signed in (signed_url, *_variants_or_none(url)):
        signature = TWILIO.compute_signature(signed, {} if as_json else params)
        assert valid_signature(TOKEN, url, body, signature) is twilio_accepts(url, body, signature)


def _variants_or_none(url: str) -> list[str]:
    try:
        return _url_variants(url)
    except ValueError:
        return []
