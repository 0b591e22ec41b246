"""The customer's card in phone wallets: what a pass shows, which devices follow a card, and the
customer's own links. Domain services (no Flask): ``fn(session, *, ...)``, flush, never commit."""
