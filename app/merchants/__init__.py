"""Merchant administration: stores with their POS credentials, and dashboard users."""
