"""Veche's fault and load proving ground: ``scripts/chaos`` (see docs/RELIABILITY.md)."""
