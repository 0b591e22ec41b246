"""Messaging services: what we send customers outside their wallet pass (SMS, web push), its delivery status,
and the opt-outs they send back. Domain code: plain functions ``fn(session, *, ...)`` that flush and never
commit; no Flask import. The channel adapters they drive live in ``app.channels``."""
