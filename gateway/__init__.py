"""Veche gateway package."""
