"""The receiver's cold start: importing main.py and serving a webhook on SQLite loads
no gRPC, no NvGrid stubs, no simulator, no AWS SDK and no Firestore client (and, for a
valid event, not even jsonschema: only a rejected payload needs its violation list).
Nor anything of the reports: no matplotlib (nor numpy, nor Pillow) and no template is
loaded. Flask itself imports jinja2, so the receiver may load no jinja2 module beyond
the ones ``import flask`` already brought in."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.harness import FUNCTIONS, SEED_PAYLOAD, TEST_TOKEN

PROBE = """
import json, sys
import flask
flask_jinja = {m for m in sys.modules if m.split(".")[0] == "jinja2"}
from functions_framework import create_app
app = create_app("receive_power_event", sys.argv[1])
reply = app.test_client().post(
    "/nvgrid/webhook", data=sys.argv[2],
    headers={"Authorization": "Bearer " + sys.argv[3], "Content-Type": "application/json"},
)
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0]
    in ("grpc", "dpsapi", "simulator", "boto3", "botocore", "nvgrid_client", "jsonschema",
        "matplotlib", "numpy", "PIL")
    or m.startswith(("google.cloud.firestore", "gridhook.nvgrid", "gridhook.store.firestore",
                     "gridhook.report"))
)
jinja = sorted(m for m in sys.modules if m.split(".")[0] == "jinja2" and m not in flask_jinja)
print(json.dumps({"status": reply.status_code, "body": reply.get_json(), "heavy": heavy,
                  "jinja": jinja}))
"""


def test_serving_a_webhook_on_sqlite_loads_nothing_heavy(tmp_path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(FUNCTIONS),
        "GRIDHOOK_STORE": f"sqlite:///{tmp_path}/events.db",
        "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(FUNCTIONS / "main.py"),
            json.dumps(SEED_PAYLOAD),
            TEST_TOKEN,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == 200 and report["body"]["status"] == "accepted"
    assert report["heavy"] == []
    assert report["jinja"] == []
