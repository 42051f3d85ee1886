"""The deployable source root stays deployable: requirements and the schema link."""

from __future__ import annotations

import re
import tomllib

from tests.harness import FUNCTIONS, REPO


def _names(requirements: list[str]) -> dict[str, str]:
    pairs = {}
    for line in requirements:
        line = line.split("#")[0].strip()
        if line:
            name = re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower()
            pairs[name] = line.replace(" ", "")
    return pairs


def test_requirements_txt_mirrors_pyproject_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = _names(project["dependencies"])
    deployed = _names((FUNCTIONS / "requirements.txt").read_text().splitlines())
    assert deployed == runtime


def test_functions_dir_carries_the_schema() -> None:
    linked = FUNCTIONS / "schemas" / "power-event.schema.json"
    assert linked.read_bytes() == (REPO / "schemas" / "power-event.schema.json").read_bytes()
