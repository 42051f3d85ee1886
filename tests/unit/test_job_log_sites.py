"""Every outcome line the jobs log names its site: the log metrics (infra/terraform
monitoring.tf) take their ``site`` label from ``jsonPayload.site``, so a line without it
would page someone without saying which site. Read from the code (each ``outcome=``
keyword and each ``{"outcome": …}`` fields dict), so a new line cannot forget it; the
lines themselves are checked at run time in tests/integration/test_fleet_jobs.py."""

from __future__ import annotations

import ast

import pytest

from tests.harness import FUNCTIONS

JOB_MODULES = ("jobs.py", "subscriptions.py", "observe.py")


def outcome_lines(source: str) -> list[tuple[int, set[str]]]:
    """(line, the field names beside it) of every outcome a module logs."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            names = {kw.arg for kw in node.keywords if kw.arg}
            if "outcome" in names:
                found.append((node.lineno, names))
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            if "outcome" in keys:
                found.append((node.lineno, {str(k) for k in keys}))
    return found


@pytest.mark.parametrize("module", JOB_MODULES)
def test_every_outcome_a_job_logs_carries_its_site(module: str) -> None:
    lines = outcome_lines((FUNCTIONS / "gridhook" / module).read_text(encoding="utf-8"))
    assert lines, f"{module} logs no outcome: is the list of job modules stale?"
    assert [line for line, fields in lines if "site" not in fields] == []


def test_the_check_sees_a_line_without_its_site() -> None:
    code = 'log.log_event(logger, 20, "x", outcome="drift", feed_tag=t)\n'
    code += 'logger.error("y", extra={"fields": {"outcome": "reconcile_failed", "site": s}})\n'
    assert outcome_lines(code) == [
        (1, {"outcome", "feed_tag"}),
        (2, {"outcome", "site"}),
    ]
