"""Rebond intake: the public questionnaire API (FastAPI) and the portal page."""
