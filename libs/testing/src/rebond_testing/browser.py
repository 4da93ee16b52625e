"""What the browser tests share: axe-core's audit of a page, and where its screenshot goes."""

import os
from pathlib import Path
from typing import Any, Protocol


class Page(Protocol):
    """What the audit uses of Playwright's synchronous `Page`."""

    def add_script_tag(self, *, content: str) -> Any: ...
    def evaluate(self, expression: str) -> Any: ...


def serious_violations(page: Page, axe_source: str) -> list[tuple[str, str, list[Any]]]:
    """axe-core's serious and critical violations of `page` as it is now: each rule's id, its
    help text and the first three elements it names (empty when the page passes). `axe_source`
    is the plugin's fixture of that name; the page needs JavaScript, and a page whose CSP
    forbids inline scripts needs its context opened with `bypass_csp=True`."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate("async () => await axe.run()")
    return [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def screenshot_path(name: str) -> str | None:
    """Where a browser test saves its full-page screenshot `name`: `$REBOND_SCREENSHOTS/name.png`
    when that variable names a folder (made if missing), otherwise nowhere (None). The tests
    check the pages without them, and a full-page screenshot costs Chromium 0.06 to 0.2 s: the
    console's walk through 17 pages took 2 s more with them. The README's come from
    `REBOND_SCREENSHOTS=docs/screenshots uv run pytest services/intake/tests/test_portal_browser.py`."""
    folder = os.environ.get("REBOND_SCREENSHOTS")
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return str(Path(folder) / f"{name}.png")
