"""The security headers every response carries (docs/rate-limits-and-headers.md).

- ``Content-Security-Policy``: scripts only from our own static files (never inline), styles from our
  static files plus ``<style>`` elements carrying this response's nonce (a programme's colours, a
  progress bar's width), no plugins, no ``<base>``, forms post only to us, and no other site may frame
  any page (``frame-ancestors 'none'``: the card page holds the delete form, the dashboard everything).
  Templates ask for the nonce with ``csp_nonce()``; a response that did not ask carries none.
- ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``.
- ``Strict-Transport-Security`` in production only (whose base URL is https): browsers then refuse plain
  http for ``TALLYPASS_HSTS_MAX_AGE`` seconds. Never in development, where it would pin 127.0.0.1 to https.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, current_app, g

NONCE = "csp_nonce"
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'{nonce}; img-src 'self' data:; "
          "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def csp_nonce() -> str:
    """This response's nonce for inline ``<style>`` elements, made on first use."""
    if NONCE not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return str(g.csp_nonce)


def policy() -> str:
    """The Content-Security-Policy of this response."""
    nonce = f" 'nonce-{g.csp_nonce}'" if NONCE in g else ""
    return POLICY.format(nonce=nonce)


def add(response: Response) -> Response:
    """Add the headers a view has not set itself."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", policy())
    response.headers.setdefault("X-Frame-Options", "DENY")
    settings = current_app.config["TALLYPASS"]
    if settings.env == "production":
        response.headers.setdefault("Strict-Transport-Security", f"max-age={settings.hsts_max_age}")
    return response


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce
