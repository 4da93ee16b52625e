"""Rebond router: orients each questionnaire to the best-suited association."""
