"""Veche genesis package."""
