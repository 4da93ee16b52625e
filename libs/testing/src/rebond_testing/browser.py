"""What the browser tests share: axe-core's audit of a page."""

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
