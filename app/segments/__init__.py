"""Customer segments: RFM scores and the 10 standard named segments (rfm), recomputed in SQL; no Flask import."""
