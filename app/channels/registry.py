"""The outside services this deployment can reach (Apple Wallet, Google Wallet), built from its settings
on first use.

A channel without credentials is None here, and its callers record what they would have sent in
the channel outbox (``ChannelMessage``) instead. Tests build a ``Channels`` pointing at the local
protocol servers in ``tests/fakes/``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from app.channels import dev_credentials as files
from app.channels.apns import ApnsClient, ApnsConfig, PushResult
from app.channels.apple_pass import PassFactory
from app.channels.apple_signer import PassSigner, SigningError
from app.channels.google_wallet import GoogleWalletClient, GoogleWalletConfig, ServiceAccount
from app.settings import Settings
from app.wallet.google import GoogleSetup

if TYPE_CHECKING:
    from app.channels.sms import SmsClient
    from app.channels.webpush import WebPusher

log = logging.getLogger(__name__)

DEFAULT_APNS_URL = "https://api.push.apple.com"
EXTENSION = "tallypass.channels"  # where create_app keeps the Channels of the running app


class Pusher(Protocol):
    def push(self, tokens: list[str]) -> list[PushResult]: ...

    def close(self) -> None: ...


@dataclass
class AppleWallet:
    pass_type_id: str
    team_id: str
    passes: PassFactory
    pusher: Pusher | None  # None: pushes are recorded in the channel outbox


@dataclass
class GoogleWallet:
    setup: GoogleSetup
    client: GoogleWalletClient | None  # None: calls are recorded in the channel outbox


class ChannelUnavailable(Exception):
    """A channel is configured but cannot work; the message says what an operator must fix."""


def _secret(value: object) -> bytes | None:
    getter = getattr(value, "get_secret_value", None)
    return getter().encode() if getter else None


def build_apple(settings: Settings) -> AppleWallet | None:
    """:raise ChannelUnavailable: credentials are configured but unusable (wrong team, expired…)."""
    cert = settings.credential_file(settings.apple_pass_cert, files.PASS_CERT)
    wwdr = settings.credential_file(settings.apple_wwdr_cert, files.WWDR_CERT)
    if cert is None or wwdr is None:
        return None
    p12 = cert.suffix.lower() in (".p12", ".pfx")
    key = None if p12 else settings.credential_file(settings.apple_pass_key, files.PASS_KEY)
    if key is None and not p12:
        return None
    password = _secret(settings.apple_pass_key_password)
    try:
        signer = PassSigner.from_files(certificate=cert, key=key, wwdr=wwdr, password=password)
        signer.check(pass_type_id=settings.apple_pass_type_id, team_id=settings.apple_team_id)
    except SigningError as exc:
        raise ChannelUnavailable(f"Apple Wallet: {exc}") from exc
    for warning in signer.expiring():
        log.warning("Apple Wallet: %s", warning)
    passes = PassFactory(signer=signer, pass_type_id=settings.apple_pass_type_id, team_id=settings.apple_team_id)
    return AppleWallet(pass_type_id=settings.apple_pass_type_id, team_id=settings.apple_team_id,
                       passes=passes, pusher=_build_apns(settings, signer))


def _build_apns(settings: Settings, signer: PassSigner) -> ApnsClient | None:
    # Stand-in certificates from dev-certs are refused by Apple: push only where a local server listens.
    if settings.apns_url.rstrip("/") == DEFAULT_APNS_URL and files.is_stand_in(signer.certificate):
        return None
    common = {"base_url": settings.apns_url.rstrip("/"), "topic": settings.apple_pass_type_id,
              "ca_file": settings.apns_ca_file}
    if settings.apns_auth == "token":
        key_file = settings.credential_file(settings.apns_auth_key, files.APNS_AUTH_KEY)
        if key_file is None or not settings.apns_key_id:
            raise ChannelUnavailable("APNs token auth needs TALLYPASS_APNS_AUTH_KEY and TALLYPASS_APNS_KEY_ID")
        token_key = files.load_private_key(key_file)
        return ApnsClient(ApnsConfig(token_key=token_key, key_id=settings.apns_key_id,  # type: ignore[arg-type]
                                     team_id=settings.apple_team_id, **common))  # type: ignore[arg-type]
    return ApnsClient(ApnsConfig(certificate=signer.certificate, private_key=signer.key, **common))  # type: ignore[arg-type]


def _default(name: str) -> str:
    return str(Settings.model_fields[name].default)


def build_google(settings: Settings) -> GoogleWallet:
    """:raise ChannelUnavailable: the service-account file is configured but unusable."""
    origins = tuple(o.strip().rstrip("/") for o in settings.google_origins.split(",") if o.strip())
    if not origins:  # the pages that show the save button are our own
        scheme, _, rest = settings.base_url.partition("://")
        origins = (f"{scheme}://{rest.split('/')[0]}",)
    path = settings.credential_file(settings.google_service_account, files.GOOGLE_SERVICE_ACCOUNT)
    try:
        account = ServiceAccount.from_file(path) if path is not None else None
    except (OSError, ValueError) as exc:
        raise ChannelUnavailable(f"Google Wallet: cannot use the service account key file {path}: {exc}") from exc
    setup = GoogleSetup(issuer_id=settings.google_issuer_id, base_url=settings.base_url, origins=origins,
                        account=account)
    reachable = account is not None and not (
        files.is_stand_in_project(account.project_id)
        and settings.google_api_url == _default("google_api_url")
        and settings.google_token_url == _default("google_token_url")
    )  # Google knows nothing of the dev-certs stand-in: without a local server its calls go to the outbox
    client = GoogleWalletClient(GoogleWalletConfig(api_url=settings.google_api_url.rstrip("/"),
                                                   token_url=settings.google_token_url, account=account)
                                ) if reachable and account is not None else None
    return GoogleWallet(setup=setup, client=client)


class Channels:
    """The deployment's channels, each built once on first use (CLI commands that never sign a
    pass do not need valid Apple credentials)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._apple: AppleWallet | None = None
        self._apple_built = False
        self._apple_error: str | None = None
        self._google: GoogleWallet | None = None
        self._google_error: str | None = None
        self._built: dict[str, Any] = {}

    def apple(self) -> AppleWallet | None:
        """The Apple channel, or None without credentials. :raise ChannelUnavailable: misconfigured."""
        if not self._apple_built:
            with self._lock:
                if not self._apple_built:
                    try:
                        self._apple = build_apple(self.settings)
                    except ChannelUnavailable as exc:
                        self._apple_error = str(exc)
                        log.error("%s", exc)
                    self._apple_built = True
        if self._apple_error:
            raise ChannelUnavailable(self._apple_error)
        return self._apple

    def google(self) -> GoogleWallet:
        """The Google channel (its client None without reachable credentials).
        :raise ChannelUnavailable: misconfigured."""
        if self._google is None and self._google_error is None:
            with self._lock:
                if self._google is None and self._google_error is None:
                    try:
                        self._google = build_google(self.settings)
                    except ChannelUnavailable as exc:
                        self._google_error = str(exc)
                        log.error("%s", exc)
        if self._google_error:
            raise ChannelUnavailable(self._google_error)
        assert self._google is not None
        return self._google

    def _once(self, name: str, build: Callable[[], Any]) -> Any:
        """Build a channel once; a configuration it cannot use is logged once and the channel is off
        (its messages go to the outbox)."""
        if name not in self._built:
            with self._lock:
                if name not in self._built:
                    try:
                        self._built[name] = build()
                    except ValueError as exc:
                        log.error("%s channel is off, its configuration is unusable: %s", name, exc)
                        self._built[name] = None
        return self._built[name]

    def sms(self) -> SmsClient | None:
        """The SMS gateway client, or None: messages are recorded in the channel outbox."""
        from app.channels.sms import build_sms_client

        return self._once("sms", lambda: build_sms_client(self.settings))

    def web_push(self) -> WebPusher | None:
        """The web-push sender, or None without a VAPID key: pushes are recorded in the channel outbox."""
        from app.channels.webpush import build_web_pusher

        return self._once("web_push", lambda: build_web_pusher(self.settings))

    def close(self) -> None:
        for client in self._built.values():
            if client is not None:
                client.close()
        if self._apple is not None and self._apple.pusher is not None:
            self._apple.pusher.close()
        if self._google is not None and self._google.client is not None:
            self._google.client.close()
