"""Veche consensus package."""
