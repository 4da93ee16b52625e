from typing import Any

from rebond_testing.browser import serious_violations


class FakePage:
    """A page whose axe-core run finds one violation of each impact."""

    def __init__(self) -> None:
        self.scripts: list[str] = []

    def add_script_tag(self, *, content: str) -> None:
        self.scripts.append(content)

    def evaluate(self, expression: str) -> Any:
        assert "axe.run()" in expression and self.scripts == ["/* axe */"]
        nodes = [{"target": [f"#n{i}"]} for i in range(5)]
        return {
            "violations": [
                {"id": impact, "help": f"{impact} help", "impact": impact, "nodes": nodes}
                for impact in ("minor", "moderate", "serious", "critical")
            ]
        }


def test_only_serious_and_critical_violations_are_kept_with_three_elements_each() -> None:
    """The audit loads axe into the page and keeps serious and critical rules, 3 nodes each."""
    found = serious_violations(FakePage(), "/* axe */")
    assert [(rule, len(nodes)) for rule, _, nodes in found] == [("serious", 3), ("critical", 3)]
