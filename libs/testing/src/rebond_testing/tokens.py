"""Forged copies of the signed tokens in e-mailed links, for the tests that must see them refused.

Changing a token's last characters does not always forge it: they may already be the ones
written in, and the last base64 character of a signature carries padding bits that decoding
drops, so a token "forged" that way was now and then the genuine one (2 of 3,000 tokens; events'
story withdrawal test once got 204 where it expected 403). `forged` changes the first character
of the signature, which is fully significant, to another one.
"""


def forged(token: str) -> str:
    """`token` with its signature (what follows the last `.`) changed in its first character."""
    head, dot, signature = token.rpartition(".")
    if not signature:
        raise ValueError(f"not a signed token: {token!r}")
    other = "A" if signature[0] != "A" else "B"
    return f"{head}{dot}{other}{signature[1:]}"
