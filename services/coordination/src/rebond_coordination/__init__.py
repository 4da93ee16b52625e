"""Rebond coordination: the grouping's staff console (issues #21 and #22)."""
