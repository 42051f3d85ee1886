"""The production entry points, judged by another schema file: for tests only.

functions/main.py runs unchanged, except that gridhook.schema reads the file named by
GRIDHOOK_TEST_SCHEMA_FILE instead of schemas/power-event.schema.json (e.g. a stricter
schema, to quarantine a payload that today's schema accepts). Serve it with
``FunctionServer("receive_power_event", env, source=SCHEMA_OVERRIDE_MAIN)``.

Production has no such setting, and this file is never deployed: no deployed receiver
can be pointed at a laxer schema.
"""

import os
import runpy
from pathlib import Path

import gridhook.schema

# Before main.py builds anything: the schema is loaded and compiled on first use.
gridhook.schema.SCHEMA_PATH = Path(os.environ["GRIDHOOK_TEST_SCHEMA_FILE"])
_main = runpy.run_path(str(Path(gridhook.schema.__file__).resolve().parents[1] / "main.py"))

receive_power_event = _main["receive_power_event"]
