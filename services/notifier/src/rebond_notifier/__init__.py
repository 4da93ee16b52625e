"""Rebond notifier: referral topics per association, e-mail and webhooks."""
