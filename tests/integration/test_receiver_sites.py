"""Receiving per site, through functions-framework's real app for main.py (in process):
``/nvgrid/webhook/<site>`` with that site's token (any carrier), ``/nvgrid/webhook`` the
default site; another site's valid token refused exactly like an unknown one; an unknown
site a 404 naming it; each site's tokens rotated on their own; the quarantine keeps the
site a body was delivered to, and a replay stores its event there."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from gridhook import receiver, schema
from gridhook.events import event_id
from gridhook.quarantine import ReplayStatus, replay
from gridhook.settings import ConfigError, get_settings, load_settings
from gridhook.store import EventQuery, EventStore, StoreError, open_store
from tests.harness import FUNCTIONS, SEED_PAYLOAD

#: Each site's current token (and, for phx1, an older one still accepted: rotation).
TOKENS = {
    "default": "default-token-0123456789abcdef",
    "phx1": "phx1-token-0123456789abcdef",
    "ams2": "ams2-token-0123456789abcdef",
}
PHX1_OLD_TOKEN = "phx1-old-token-0123456789abcdef"
JSON = {"Content-Type": "application/json"}
SITES = ("default", "phx1", "ams2")
ZONES = {"default": "UTC", "phx1": "America/Phoenix", "ams2": "Europe/Amsterdam"}


def sites_toml(secrets: Path) -> str:
    tables = []
    for site in SITES:
        tables.append(
            f"[sites.{site}]\n"
            f'timezone = "{ZONES[site]}"\n'
            f'nvgrid_host = "dps.{site}.example.com:443"\n'
            f'nvgrid_credentials_file = "{secrets / site / "credentials"}"\n'
            f'webhook_tokens_file = "{secrets / site / "webhook-tokens"}"\n'
        )
    return "\n".join(tables)


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    """Each site's token file (the receiver reads no other site file: none other exists)."""
    root = tmp_path / "secrets"
    for site in SITES:
        (root / site).mkdir(parents=True)
        tokens = [TOKENS[site], PHX1_OLD_TOKEN] if site == "phx1" else [TOKENS[site]]
        (root / site / "webhook-tokens").write_text("\n".join(tokens) + "\n")
    return root


@pytest.fixture
def sites_env(tmp_path: Path, secrets: Path) -> dict[str, str]:
    sites_file = tmp_path / "sites.toml"
    sites_file.write_text(sites_toml(secrets))
    return {
        "GRIDHOOK_SITES_FILE": str(sites_file),
        "GRIDHOOK_STORE": f"sqlite:///{tmp_path}/events.db",
        "GRIDHOOK_WEBHOOK_TOKENS_RELOAD_SECONDS": "0",
    }


@pytest.fixture
def serve(sites_env: dict[str, str]) -> Iterator[Callable[..., FlaskClient]]:
    """serve(**env): the real app for main.py serving receive_power_event, in process."""
    from functions_framework import create_app

    with pytest.MonkeyPatch.context() as mp:

        def start(**env: str) -> FlaskClient:
            for name in ("GRIDHOOK_WEBHOOK_TOKENS", "GRIDHOOK_WEBHOOK_TOKENS_FILE"):
                mp.delenv(name, raising=False)
            for name, value in {**sites_env, **env}.items():
                mp.setenv(name, value)
            mp.setenv("FUNCTION_TARGET", "receive_power_event")
            get_settings.cache_clear()  # settings and the receiver are process-wide
            mp.setattr(receiver, "_receiver", None)
            return create_app("receive_power_event", str(FUNCTIONS / "main.py")).test_client()

        yield start
        if receiver._receiver is not None:
            with contextlib.suppress(StoreError):
                receiver._receiver.store().close()
    get_settings.cache_clear()


@pytest.fixture
def client(serve: Callable[..., FlaskClient]) -> FlaskClient:
    return serve()


@pytest.fixture
def store(sites_env: dict[str, str]) -> Iterator[EventStore]:
    opened = open_store(sites_env["GRIDHOOK_STORE"])
    yield opened
    opened.close()


@pytest.fixture
def log_lines() -> Iterator[list[dict[str, Any]]]:
    """The receiver's log lines (their structured fields), as they are logged."""
    lines: list[dict[str, Any]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(dict(getattr(record, "fields", {})))

    logger = logging.getLogger("gridhook.receiver")
    handler = Keep(logging.INFO)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def path_of(site: str) -> str:
    return "/nvgrid/webhook" if site == "default" else f"/nvgrid/webhook/{site}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


def basic(token: str) -> dict[str, str]:
    credentials = base64.b64encode(f"dps:{token}".encode()).decode()
    return {"Authorization": f"Basic {credentials}", **JSON}


def payload(seq: int, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEED_PAYLOAD)
    body.update(seq=seq, **changes)
    return body


def events_of(store: EventStore, site: str) -> list:
    return store.events(EventQuery(site=site, limit=1000)).events


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("carrier", ["bearer", "basic", "query"])
def test_each_site_receives_with_its_own_token_on_its_own_path(
    client: FlaskClient, store: EventStore, site: str, carrier: str
) -> None:
    token = TOKENS[site]
    path, headers = path_of(site), bearer(token)
    if carrier == "basic":
        headers = basic(token)
    elif carrier == "query":
        path, headers = f"{path}?token={token}", JSON
    reply = client.post(path, json=payload(1), headers=headers)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json() == {"status": "accepted", "event_id": event_id(payload(1), site)}
    [stored] = events_of(store, site)
    assert (stored.site, stored.event_id) == (site, reply.get_json()["event_id"])
    for other in set(SITES) - {site}:
        assert events_of(store, other) == []


def test_the_default_site_keeps_todays_path_and_ids(client: FlaskClient, store) -> None:
    # Today's id (the canonical payload's hash, no site in it): an upgraded store's
    # redeliveries stay duplicates.
    reply = client.post("/nvgrid/webhook", json=SEED_PAYLOAD, headers=bearer(TOKENS["default"]))
    assert reply.get_json() == {"status": "accepted", "event_id": event_id(SEED_PAYLOAD)}
    again = client.post(
        "/nvgrid/webhook/default", json=SEED_PAYLOAD, headers=bearer(TOKENS["default"])
    )
    assert again.get_json() == {"status": "duplicate", "event_id": event_id(SEED_PAYLOAD)}


def test_the_same_payload_on_two_sites_is_two_events(client: FlaskClient, store) -> None:
    answers = {}
    for site in ("phx1", "ams2", "phx1", "ams2"):
        reply = client.post(path_of(site), json=payload(7), headers=bearer(TOKENS[site]))
        answers.setdefault(site, []).append(reply.get_json())
    assert [a["status"] for a in answers["phx1"]] == ["accepted", "duplicate"]
    assert [a["status"] for a in answers["ams2"]] == ["accepted", "duplicate"]
    assert answers["phx1"][0]["event_id"] != answers["ams2"][0]["event_id"]
    assert [e.event_id for e in events_of(store, "phx1")] == [answers["phx1"][0]["event_id"]]
    assert [e.event_id for e in events_of(store, "ams2")] == [answers["ams2"][0]["event_id"]]


@pytest.mark.parametrize("carrier", [bearer, basic, "query"], ids=["bearer", "basic", "query"])
def test_another_sites_token_is_refused_exactly_like_an_unknown_one(
    client: FlaskClient, store: EventStore, log_lines: list[dict[str, Any]], carrier: Any
) -> None:
    def post(token: str) -> Any:
        if carrier == "query":
            return client.post(f"/nvgrid/webhook/ams2?token={token}", json=payload(3), headers=JSON)
        return client.post("/nvgrid/webhook/ams2", json=payload(3), headers=carrier(token))

    # phx1's current token, the default site's, and a token no site has.
    answers = [post(token) for token in (TOKENS["phx1"], TOKENS["default"], "x" * 27)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    first = answers[0]
    for other in answers[1:]:
        assert other.get_data() == first.get_data()
        assert sorted(other.headers.items()) == sorted(first.headers.items())
    assert first.get_json()["error"]["code"] == "unauthorized"
    assert "ams2" not in first.get_data(as_text=True)  # no hint of whose token it was
    assert [(line["outcome"], line["status"], line["site"]) for line in log_lines] == [
        ("unauthorized", 401, "ams2")
    ] * 3
    assert all(events_of(store, site) == [] for site in SITES)


@pytest.mark.parametrize("path", ["/nvgrid/webhook/nope", "/nvgrid/webhook/phx1/extra"])
def test_an_unknown_site_is_a_404_naming_it(
    client: FlaskClient, store: EventStore, log_lines: list[dict[str, Any]], path: str
) -> None:
    reply = client.post(path, json=payload(4), headers=bearer(TOKENS["phx1"]))
    assert reply.status_code == 404
    assert reply.headers["Cache-Control"] == "no-store"
    error = reply.get_json()["error"]
    name = path.removeprefix("/nvgrid/webhook/")
    assert (error["code"], error["site"]) == ("unknown_site", name)
    assert repr(name) in error["message"]
    assert "ams2" not in error["message"]  # which sites exist is not told to a stranger
    assert all(events_of(store, site) == [] for site in SITES)
    assert [(line["status"], line["site"]) for line in log_lines] == [(404, name)]


def test_without_sites_settings_a_site_path_is_unknown_and_todays_path_works(
    serve: Callable[..., FlaskClient], tmp_path: Path
) -> None:
    token = TOKENS["default"]
    client = serve(GRIDHOOK_SITES_FILE="", GRIDHOOK_WEBHOOK_TOKENS=token)
    assert client.post("/nvgrid/webhook", json=payload(5), headers=bearer(token)).status_code == 200
    # Any path but a site's is the default site's, as every path was before sites.
    assert client.post("/", json=payload(6), headers=bearer(token)).status_code == 200
    reply = client.post("/nvgrid/webhook/phx1", json=payload(5), headers=bearer(token))
    assert reply.status_code == 404


def test_each_sites_tokens_rotate_on_their_own(
    client: FlaskClient, store: EventStore, secrets: Path
) -> None:
    # phx1 accepts its previous token too until the rotation ends.
    assert (
        client.post(path_of("phx1"), json=payload(8), headers=bearer(PHX1_OLD_TOKEN)).status_code
        == 200
    )
    new = "phx1-new-token-0123456789abcdef"
    (secrets / "phx1" / "webhook-tokens").write_text(f"{new}\n{TOKENS['phx1']}\n")
    assert client.post(path_of("phx1"), json=payload(9), headers=bearer(new)).status_code == 200
    assert (
        client.post(path_of("phx1"), json=payload(10), headers=bearer(PHX1_OLD_TOKEN)).status_code
        == 401
    )
    # Another site's tokens did not change, and phx1's new one is no good there.
    assert client.post(path_of("ams2"), json=payload(11), headers=bearer(new)).status_code == 401
    assert (
        client.post(path_of("ams2"), json=payload(12), headers=bearer(TOKENS["ams2"])).status_code
        == 200
    )
    assert [e.payload["seq"] for e in events_of(store, "phx1")] == [8, 9]


def test_log_lines_carry_the_site(client: FlaskClient, log_lines: list[dict[str, Any]]) -> None:
    client.post(path_of("phx1"), json=payload(13), headers=bearer(TOKENS["phx1"]))
    client.post(path_of("ams2"), json={"event": 1}, headers=bearer(TOKENS["ams2"]))
    client.post(path_of("default"), data=b"{", headers=bearer(TOKENS["default"]))
    client.get(path_of("ams2"))
    assert [(line["site"], line["outcome"]) for line in log_lines] == [
        ("phx1", "accepted"),
        ("ams2", "rejected"),
        ("default", "invalid"),
        ("ams2", "method_not_allowed"),
    ]


# -- the quarantine keeps the site ---------------------------------------------------------


@pytest.fixture
def stricter_schema(tmp_path: Path) -> Iterator[None]:
    """The receiver judging by a stricter schema (load units w, kw or mw only) until the
    fixture ends: a payload today's schema accepts is quarantined, then replayable."""
    strict = copy.deepcopy(schema.load_schema())
    unit = strict["$defs"]["nullableLoad"]["properties"]["unit"]
    unit["pattern"] = "^(w|kw|mw)$"
    path = tmp_path / "stricter.schema.json"
    path.write_text(json.dumps(strict))
    caches = (schema.load_schema, schema.validator, schema.fast_validator)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(schema, "SCHEMA_PATH", path)
        for cached in caches:
            cached.cache_clear()
        yield
    for cached in caches:
        cached.cache_clear()


def test_the_quarantine_keeps_the_site_and_a_replay_stores_there(
    client: FlaskClient, store: EventStore, stricter_schema: None
) -> None:
    body = payload(14, target_load={"value": 6.5, "unit": "megawatt"})
    kept = {}
    for site in ("phx1", "default"):
        reply = client.post(path_of(site), json=body, headers=bearer(TOKENS[site]))
        assert reply.status_code == 422, reply.get_data(as_text=True)
        kept[site] = reply.get_json()["error"]["quarantine_id"]
    assert kept["phx1"] != kept["default"]  # the same body on two sites: two records
    [item] = store.quarantined(site="phx1").items
    assert (item.quarantine_id, item.site) == (kept["phx1"], "phx1")
    assert store.get_quarantined(kept["phx1"], site="ams2") is None
    assert store.quarantined(site="ams2").items == []

    # Today's schema accepts the body: the replay stores phx1's event, in phx1.
    for cached in (schema.load_schema, schema.validator, schema.fast_validator):
        cached.cache_clear()
    schema.SCHEMA_PATH = FUNCTIONS / "schemas" / "power-event.schema.json"
    result = replay(store, item)
    assert (result.status, result.event_id) == (ReplayStatus.REPLAYED, event_id(body, "phx1"))
    assert [e.event_id for e in events_of(store, "phx1")] == [result.event_id]
    assert events_of(store, "default") == []
    assert store.get_quarantined(kept["phx1"], site="phx1").replayed_event_id == result.event_id
    assert store.get_quarantined(kept["default"], site="default").replayed_at is None
    # A redelivery to phx1 is now a duplicate of the replayed event.
    again = client.post(path_of("phx1"), json=body, headers=bearer(TOKENS["phx1"]))
    assert again.get_json() == {"status": "duplicate", "event_id": result.event_id}


# -- start-up ------------------------------------------------------------------------------


def test_start_up_names_the_site_and_key_of_a_missing_token_file(
    sites_env: dict[str, str], secrets: Path
) -> None:
    (secrets / "ams2" / "webhook-tokens").unlink()
    with pytest.raises(ConfigError, match=r"site ams2: webhook_tokens_file .* does not exist"):
        receiver.site_verifiers(load_settings(sites_env))


def test_start_up_refuses_a_site_without_a_token(sites_env: dict[str, str], secrets: Path) -> None:
    (secrets / "phx1" / "webhook-tokens").write_text("\n")
    with pytest.raises(ConfigError, match=r"site phx1: webhook_tokens_file: no webhook token"):
        receiver.site_verifiers(load_settings(sites_env))
    allowed = load_settings({**sites_env, "GRIDHOOK_ALLOW_UNAUTHENTICATED": "1"})
    assert not receiver.site_verifiers(allowed)["phx1"].enabled
    assert receiver.site_verifiers(allowed)["ams2"].enabled


def test_start_up_refuses_a_weak_site_token_without_showing_it(
    sites_env: dict[str, str], secrets: Path
) -> None:
    (secrets / "phx1" / "webhook-tokens").write_text("short-secret\n")
    with pytest.raises(ConfigError) as exc:
        receiver.site_verifiers(load_settings(sites_env))
    assert "site phx1: webhook_tokens_file" in str(exc.value)
    assert "short-secret" not in str(exc.value)


def test_the_receiver_does_not_need_a_sites_nvgrid_files(sites_env: dict[str, str]) -> None:
    # No credentials file exists (see `secrets`): the jobs read those, not the receiver.
    assert set(receiver.site_verifiers(load_settings(sites_env))) == set(SITES)
