"""Adapters to the outside world (Apple Wallet, APNs, Google Wallet, web push, SMS).
The only code that talks to them; no Flask import here."""
