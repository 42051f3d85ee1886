"""Derivation never reads the store: episodes, state and settlement are pure (events or
intervals in, figures out); one loader beside each reads what a range needs. Checked two
ways: by reading every derivation module's imports, and by importing the packages in a
fresh interpreter and looking at what got loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import FUNCTIONS, clean_env
from tests.unit.simulator.test_imports import gridhook_imports

GRIDHOOK = FUNCTIONS / "gridhook"
#: The packages whose modules derive figures, and the one loader each may have.
DERIVATION = {"episodes": {"load.py"}, "state": {"load.py"}, "settlement": set()}


def derivation_modules() -> list[Path]:
    return sorted(
        source
        for package, loaders in DERIVATION.items()
        for source in (GRIDHOOK / package).glob("*.py")
        if source.name not in loaders
    )


def test_there_are_derivation_modules_to_check() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in derivation_modules()}
    assert {"episodes/judging.py", "state/__init__.py", "settlement/baselines.py"} <= names


@pytest.mark.parametrize("source", derivation_modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_derivation_module_imports_nothing_of_the_store(source: Path) -> None:
    store = {name for name in gridhook_imports(source) if name.startswith("gridhook.store")}
    assert not store, f"{source.relative_to(FUNCTIONS)} imports {sorted(store)}"


def test_importing_the_derivation_packages_loads_no_store_module() -> None:
    packages = ", ".join(f"gridhook.{name}" for name in DERIVATION)
    code = (
        f"import sys; import {packages}; "
        "print(sorted(m for m in sys.modules if m.startswith('gridhook.store')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env(PYTHONPATH=str(FUNCTIONS)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
