"""Veche chain package."""
