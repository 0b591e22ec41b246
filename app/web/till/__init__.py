"""The till (``/till/``): a cashier's web app on a phone or tablet at the counter, for shops with no POS
integration (docs/till.md).

- ``access``: who may use it (a cashier at its own stores; an admin or marketer at any store);
- ``pages``: the app's shell, its web-app manifest and its service worker;
- ``actions``: the JSON calls the shell makes (look a card up, quote, record a purchase, refund), through the
  POS API's ledger services, idempotent per attempt and audited with the cashier.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("till", __name__, url_prefix="/till")

from app.web.till import actions, pages  # noqa: E402,F401  (the views register themselves on bp)
