"""What tests read on a server-rendered page, as a person's browser would send it back."""

import re

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def form_csrf(html: str) -> str:
    """The CSRF token of the page's form (its hidden `csrf` field), for the test's next POST."""
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)
