"""schemathesis against the real functions-framework app (in-process, through its WSGI
interface), driven by schemas/openapi.yaml.

Every answer must conform to the document (status, headers, content type, JSON shape), no
request may yield a 5xx, schema-valid payloads must be accepted (200) and schema-violating
ones rejected; methods the document does not list must get 405 with `Allow`. schemathesis
runs its examples, coverage and fuzzing phases; an own check below judges each body by
gridhook's schema as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from gridhook.schema import is_valid
from tests.harness import REPO, TEST_TOKEN, FunctionApp, function_app

OPENAPI = REPO / "schemas" / "openapi.yaml"
# Enough to cover every branch the document describes within a few seconds on two cores;
# the coverage phase adds its own cases (each boundary of the schema, each missing part).
MAX_EXAMPLES = 100


#: The site ``/nvgrid/webhook/{site}`` is exercised on (beside the default site's path).
SITE = "phx1"


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionApp]:
    root = tmp_path_factory.mktemp("openapi")
    sites = []
    for site in ("default", SITE):
        (root / site).mkdir()
        (root / site / "webhook-tokens").write_text(TEST_TOKEN)
        sites.append(
            f'[sites.{site}]\ntimezone = "UTC"\nnvgrid_host = "dps.{site}.test:443"\n'
            f'nvgrid_credentials_file = "{root / site / "credentials"}"\n'
            f'webhook_tokens_file = "{root / site / "webhook-tokens"}"\n'
        )
    (root / "sites.toml").write_text("\n".join(sites))
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{root}/events.db",
        "GRIDHOOK_SITES_FILE": f"{root}/sites.toml",
    }
    with function_app("receive_power_event", env) as app:
        yield app


@pytest.fixture(scope="module")
def openapi(receiver: FunctionApp) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "base-url": receiver.url,
            "generation": {"max-examples": MAX_EXAMPLES},
            # A site the deployment serves: any other name is the documented 404.
            "parameters": {"path.site": SITE},
            # Every carrier the document declares gets the real token.
            "auth": {
                "openapi": {
                    "bearerToken": {"bearer": TEST_TOKEN},
                    "basicToken": {"username": "dps", "password": TEST_TOKEN},
                    "queryToken": {"api_key": TEST_TOKEN},
                }
            },
            "checks": {
                # Stricter than schemathesis's defaults, which also accept 401/404/5xx here.
                "positive_data_acceptance": {"expected-statuses": ["200"]},
                "negative_data_rejection": {
                    "expected-statuses": ["400", "401", "405", "413", "415", "422"]
                },
            },
        }
    )
    schema = schemathesis.openapi.from_path(OPENAPI, config=config)
    schema.app = receiver.wsgi  # every case is called through the app, in-process
    return schema


schema = schemathesis.pytest.from_fixture("openapi")


@schema.parametrize()
def test_receiver_conforms_to_its_openapi_document(case: Any) -> None:
    response = case.call_and_validate()
    # Our own oracle, on what was actually sent: only schema-valid bodies are stored.
    body = _sent_json(response.request.body)
    if response.status_code == 200:
        assert is_valid(body), f"accepted a body that fails the schema: {body!r}"
    if response.status_code == 422:
        assert not is_valid(body), f"rejected a body that passes the schema: {body!r}"


def _sent_json(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
