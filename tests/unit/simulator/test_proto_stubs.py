"""The committed stubs under functions/dpsapi/v1 match proto/, and expose what the seed uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dpsapi.v1 import auth_pb2, auth_pb2_grpc, nvgrid_pb2, nvgrid_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[3]
PROTO_ROOT = REPO_ROOT / "proto"
COMMITTED_STUBS = REPO_ROOT / "functions" / "dpsapi" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
# Version stamps of the generator. They change with every grpcio-tools release without the
# proto changing, so a fresh clone resolving a newer grpcio-tools must not fail here; what the
# stamps require of the runtime is checked by importing the committed stubs (module top).
_TOOL_VERSION_STAMPS = [
    re.compile(r"^# Protobuf Python Version: .*$", re.MULTILINE),
    re.compile(r"ValidateProtobufRuntimeVersion\([^)]*\)"),
    re.compile(r"^GRPC_GENERATED_VERSION = .*$", re.MULTILINE),
]


def _without_version_stamps(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    for stamp in _TOOL_VERSION_STAMPS:
        text = stamp.sub("<tool version>", text)
    return text


def _generate_stubs(out_dir: Path) -> None:
    """Run protoc exactly as `make proto` does, but into out_dir."""
    protos = sorted(
        str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "dpsapi/v1").glob("*.proto")
    )
    # `python -m grpc_tools.protoc` adds the include path of the well-known types
    # (google/protobuf/empty.proto, timestamp.proto) itself, as in the Makefile.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            f"--pyi_out={out_dir}",
            *protos,
        ],
        cwd=PROTO_ROOT,
        check=True,
        capture_output=True,
    )


def test_committed_stubs_match_proto(tmp_path: Path) -> None:
    _generate_stubs(tmp_path)
    fresh_dir = tmp_path / "dpsapi" / "v1"
    fresh = sorted(p.name for p in fresh_dir.iterdir() if p.name.endswith(GENERATED_SUFFIXES))
    committed = sorted(
        p.name for p in COMMITTED_STUBS.iterdir() if p.name.endswith(GENERATED_SUFFIXES)
    )
    assert fresh == committed, "run `make proto`: generated file set differs"
    assert fresh, "protoc produced nothing"
    drifted = [
        name
        for name in fresh
        if _without_version_stamps(fresh_dir / name)
        != _without_version_stamps(COMMITTED_STUBS / name)
    ]
    assert not drifted, f"stubs drifted from proto/, run `make proto`: {drifted}"


def test_seed_attribute_accesses_work() -> None:
    # Exactly the expressions the seed's register/unregister examples evaluate.
    request = nvgrid_pb2.RegisterWebhookRequest(url="http://grid-solution:8080/nvgrid/webhook")
    request.for_events.extend(
        [
            nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_UP,
            nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_END_RAMP_UP,
            nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_DOWN,
            nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_END_RAMP_DOWN,
        ]
    )
    assert list(request.for_events) == [1, 2, 3, 4]
    response = nvgrid_pb2.LoadTargetResponse(
        code=nvgrid_pb2.LoadTargetResponse.STATUS_CODE_SUCCESS, diag_msg="ok"
    )
    assert response.code == nvgrid_pb2.LoadTargetResponse.STATUS_CODE_SUCCESS
    assert response.diag_msg == "ok"
    assert nvgrid_pb2.UnregisterWebhookRequest(url="http://x/").url == "http://x/"


@pytest.mark.parametrize(
    ("enum_type", "expected"),
    [
        (
            nvgrid_pb2.RegisterWebhookRequest.PowerEvent,
            {
                "POWER_EVENT_UNSPECIFIED": 0,
                "POWER_EVENT_START_RAMP_UP": 1,
                "POWER_EVENT_END_RAMP_UP": 2,
                "POWER_EVENT_START_RAMP_DOWN": 3,
                "POWER_EVENT_END_RAMP_DOWN": 4,
            },
        ),
        (
            nvgrid_pb2.LoadTargetResponse.StatusCode,
            {"STATUS_CODE_UNSPECIFIED": 0, "STATUS_CODE_SUCCESS": 1, "STATUS_CODE_ERROR": 2},
        ),
        (
            nvgrid_pb2.LoadValue.Unit,
            {"UNIT_UNSPECIFIED": 0, "UNIT_WATT": 1, "UNIT_KILOWATT": 2, "UNIT_MEGAWATT": 3},
        ),
    ],
)
def test_enum_numbers_are_the_documented_ones(enum_type: object, expected: dict[str, int]) -> None:
    assert dict(enum_type.items()) == expected  # type: ignore[attr-defined]


def test_package_services_and_messages_are_the_documented_ones() -> None:
    assert nvgrid_pb2.DESCRIPTOR.package == "nvidia.dcpower.v1"
    assert auth_pb2.DESCRIPTOR.package == "nvidia.dcpower.v1"
    nvgrid = nvgrid_pb2.DESCRIPTOR.services_by_name["NvGrid"]
    assert {m.name for m in nvgrid.methods} == {
        "SetLoadTarget",
        "GetLoadSchedule",
        "GetCurrentLoadTarget",
        "GetMetadata",
        "RegisterWebhook",
        "UnregisterWebhook",
        "GetStatus",
    }
    auth = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
    assert {m.name for m in auth.methods} == {"Token", "RefreshToken"}

    def all_names(message_types: object, prefix: str = "") -> set[str]:
        names: set[str] = set()
        for message in message_types:  # type: ignore[attr-defined]
            names.add(prefix + message.name)
            names |= all_names(message.nested_types, prefix + message.name + ".")
        return names

    documented = {
        "FeedMetadata",
        "FeedMetadata.Entry",
        "FeedMetadata.MetadataEntry",
        "GetCurrentLoadTargetResponse",
        "GetCurrentLoadTargetResponse.LoadTargetsEntry",
        "GetLoadScheduleRequest",
        "Interval",
        "LoadSchedule",
        "LoadTarget",
        "LoadTargetRequest",
        "LoadTargetResponse",
        "LoadTargetResponse.Detail",
        "LoadTargetStatus",
        "LoadTargetStatus.FeedStatus",
        "LoadTargetStatus.StatusesEntry",
        "LoadTargetStrategy",
        "LoadValue",
        "RegisterWebhookRequest",
        "UnregisterWebhookRequest",
    }
    assert all_names(nvgrid_pb2.DESCRIPTOR.message_types_by_name.values()) == documented
    assert set(auth_pb2.DESCRIPTOR.message_types_by_name) == {
        "PasswordCredential",
        "TokenRequest",
        "RefreshTokenRequest",
        "TokenResponse",
    }
    # The one field number the docs do publish.
    credential = auth_pb2.TokenRequest.DESCRIPTOR.fields_by_name["password_credential"]
    assert credential.number == 1


def test_grpc_stubs_expose_services() -> None:
    assert hasattr(nvgrid_pb2_grpc, "NvGridStub")
    assert hasattr(nvgrid_pb2_grpc, "add_NvGridServicer_to_server")
    assert hasattr(auth_pb2_grpc, "AuthServiceStub")
    assert hasattr(auth_pb2_grpc, "add_AuthServiceServicer_to_server")
