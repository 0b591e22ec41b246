"""Read-only figures for the dashboard (no writes)."""
