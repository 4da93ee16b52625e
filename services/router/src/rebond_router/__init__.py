"""Rebond router: orients each questionnaire to the best-suited association."""

__version__ = "0.2.0"
