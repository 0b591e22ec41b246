"""Campaigns: audiences materialised into deliveries, personalised messages, and the senders that deliver
them over the customer's first reachable channel. Domain services (no Flask): flush, never commit."""
