"""Submission references: unguessable, easy to read aloud (Crockford base32, no I L O U)."""

import secrets

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    """`RB-XXXX-XXXX-XXXX-XXXX`: 80 random bits."""
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return "RB-" + "-".join(chars[i : i + 4] for i in range(0, 16, 4))
