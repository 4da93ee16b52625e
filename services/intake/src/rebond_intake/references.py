"""Submission references: unguessable, easy to read aloud (Crockford base32, no I L O U)."""

import base64
import secrets

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: RFC 4648 base32 digit → Crockford digit (the same 5 bits, another alphabet).
_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)


def new_reference() -> str:
    """`RB-XXXX-XXXX-XXXX-XXXX`: 80 random bits, 10 bytes read in one call (not 16 draws of
    `secrets.choice`, which showed in the profile) and spelled as 16 base32 digits."""
    chars = base64.b32encode(secrets.token_bytes(10)).decode("ascii").translate(_TO_CROCKFORD)
    return f"RB-{chars[0:4]}-{chars[4:8]}-{chars[8:12]}-{chars[12:16]}"
