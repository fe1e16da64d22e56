"""axe-core, vendored from its npm package into tests/browser/vendor, run on a Playwright page.

Nothing is fetched at run time: the script is read from the test suite and injected into the page.
"""

from pathlib import Path
from typing import Any

AXE_VERSION = "4.14.1"
AXE_SCRIPT = Path(__file__).resolve().parents[1] / "browser" / "vendor" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")


def axe_violations(page: Any, *, impacts: tuple[str, ...] = BLOCKING_IMPACTS) -> list[dict[str, Any]]:
    """The violations axe finds on the page as it is now, of the impacts given."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated through the browser's debugging protocol rather than added as a script tag: the
        # pages' Content-Security-Policy (rightly) refuses inline scripts.
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    loaded = page.evaluate("() => window.axe.version")
    assert loaded == AXE_VERSION, f"tests/browser/vendor/axe.min.js is axe {loaded}, the helper expects {AXE_VERSION}"
    results = page.evaluate("() => window.axe.run(document, {resultTypes: ['violations']})")
    return [violation for violation in results["violations"] if violation["impact"] in impacts]


def violations_report(violations: list[dict[str, Any]]) -> str:
    """Each violation with the rule, why it matters and where, as a person fixing it reads it."""
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})")
        for node in violation["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}: {node['html'][:200]}")
            for reason in node.get("failureSummary", "").splitlines():
                lines.append(f"        {reason.strip()}")
    return "\n".join(lines)


def assert_no_serious_violations(page: Any) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe found on {page.url}:\n{violations_report(violations)}"
