"""The receiver's log line lets a log metric count targets not met: an accepted event
carries ``event`` and ``compliant``; a redelivery carries no ``compliant``. Through the
real functions-framework server, checked against the target_not_met metric's filter in
infra/terraform/monitoring.tf."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from tests.harness import SEED_PAYLOAD, TEST_TOKEN, function_server
from tests.infra import tfcheck

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}


def payload(event: str, compliant: bool, correlation_id: str) -> dict:
    body = copy.deepcopy(SEED_PAYLOAD)
    body.update(event=event, compliant=compliant, correlation_id=correlation_id)
    return body


def test_log_lines_let_a_metric_count_each_target_not_met_once(tmp_path: Path) -> None:
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{tmp_path}/events.db",
        "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN,
    }
    sent = [
        payload("end_ramp_down", False, "missed-target"),
        payload("end_ramp_down", False, "missed-target"),  # a redelivery
        payload("end_ramp_down", True, "met-target"),
        payload("start_ramp_down", False, "still-ramping"),  # not met *yet*: not counted
    ]
    with function_server("receive_power_event", env, cwd=tmp_path) as server:
        answers = [server.post(json=body, headers=AUTH).json()["status"] for body in sent]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [
                json.loads(line)
                for line in server.logs().splitlines()
                if line.startswith("{") and '"outcome"' in line
            ]
            if len(lines) >= len(sent):
                break
            time.sleep(0.05)
    assert answers == ["accepted", "duplicate", "accepted", "accepted"]
    first, again, met, ramping = lines
    assert (first["outcome"], first["event"], first["compliant"]) == (
        "accepted",
        "end_ramp_down",
        False,
    )
    assert again["outcome"] == "duplicate" and "compliant" not in again
    assert met["compliant"] is True and ramping["compliant"] is False

    metric = tfcheck.load_stack().locals()["counter_metrics"]["target_not_met"]
    assert [line for line in lines if tfcheck.filter_admits(metric["filter"], line)] == [first]
