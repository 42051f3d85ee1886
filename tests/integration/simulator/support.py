"""Helpers shared by the simulator integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc

from dpsapi.v1 import auth_pb2, auth_pb2_grpc, nvgrid_pb2_grpc
from simulator import Simulator

USER, PASSWORD = "admin", "password"
SimFactory = Callable[..., Simulator]


def open_channel(sim: Simulator) -> grpc.Channel:
    if sim.ca_cert_path is None:
        return grpc.insecure_channel(sim.address)
    credentials = grpc.ssl_channel_credentials(sim.ca_cert_path.read_bytes())
    return grpc.secure_channel(f"localhost:{sim.port}", credentials)


@dataclass
class Client:
    channel: grpc.Channel
    auth: auth_pb2_grpc.AuthServiceStub
    nvgrid: nvgrid_pb2_grpc.NvGridStub
    metadata: list[tuple[str, str]]


def connect(sim: Simulator) -> Client:
    channel = open_channel(sim)
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    tokens = auth.Token(
        auth_pb2.TokenRequest(
            password_credential=auth_pb2.PasswordCredential(username=USER, password=PASSWORD)
        ),
        timeout=5,
    )
    return Client(
        channel,
        auth,
        nvgrid_pb2_grpc.NvGridStub(channel),
        [("authorization", f"Bearer {tokens.access_token}")],
    )
