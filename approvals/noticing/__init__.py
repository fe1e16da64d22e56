"""Noticing: what Countersign measures, and what it tells people."""
