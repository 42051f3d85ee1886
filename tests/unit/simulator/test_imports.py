"""The simulator is DPS's side, not gridhook's: of gridhook it imports only the clock (the
one both follow for a fast simulated day), read here from every module's import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.harness import REPO

SIMULATOR = REPO / "simulator"
ALLOWED = {"gridhook.clock"}


def gridhook_imports(source: Path) -> set[str]:
    """Every gridhook module `source` imports, at any depth (inside functions and
    `if TYPE_CHECKING:` too), as dotted names: `from gridhook import x` counts as gridhook.x."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "gridhook":
                found.update(f"gridhook.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return {name for name in found if name == "gridhook" or name.startswith("gridhook.")}


def test_gridhook_imports_are_read_from_every_kind_of_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import gridhook.events\n"
        "from gridhook import store\n"
        "from gridhook.clock import DevClock\n"
        "def f():\n    from gridhook.report import build\n"
        "from . import gridhook\n"  # relative: not the gridhook package
    )
    assert gridhook_imports(module) == {
        "gridhook.events",
        "gridhook.store",
        "gridhook.clock",
        "gridhook.report",
    }


@pytest.mark.parametrize("source", sorted(SIMULATOR.rglob("*.py")), ids=lambda p: p.name)
def test_the_simulator_imports_only_gridhooks_clock(source: Path) -> None:
    assert gridhook_imports(source) <= ALLOWED, (
        f"{source.relative_to(REPO)} imports {sorted(gridhook_imports(source) - ALLOWED)}; "
        "the simulator may use only gridhook.clock (what drives gridhook and the simulator "
        "together belongs in demo/)"
    )
