"""Veche node package."""
