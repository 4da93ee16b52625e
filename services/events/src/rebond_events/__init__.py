"""Rebond events: the Conférences du rebond (conferences, registrations, invitations)."""
