"""TokenManager against a tiny real AuthService (in-process gRPC) that issues JWT-shaped tokens,
so the "refresh before expiry when known" path can be driven with a fake clock."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from dpsapi.v1 import auth_pb2, auth_pb2_grpc
from gridhook.nvgrid import CallPolicy, Credentials, NvGridAuthError, make_endpoint
from gridhook.nvgrid.auth import TokenManager, _jwt_expiry, bearer_metadata
from gridhook.nvgrid.channel import open_channel


def jwt(exp: float, serial: int) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'exp': exp, 'n': serial})}.sig"


class JwtAuthService(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.ttl = 300.0
        self.calls: list[str] = []
        self.refusing_refresh = False

    def _issue(self) -> auth_pb2.TokenResponse:
        serial = len(self.calls)
        return auth_pb2.TokenResponse(
            access_token=jwt(self.now + self.ttl, serial), refresh_token=f"refresh-{serial}"
        )

    def Token(self, request, context):
        self.calls.append("Token")
        credential = request.password_credential
        if (credential.username, credential.password) != ("admin", "password"):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid credentials")
        return self._issue()

    def RefreshToken(self, request, context):
        self.calls.append("RefreshToken")
        if self.refusing_refresh or not request.refresh_token.startswith("refresh-"):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "refresh token expired")
        return self._issue()


@pytest.fixture
def auth_service() -> Iterator[tuple[JwtAuthService, grpc.Channel, object]]:
    service = JwtAuthService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    endpoint = make_endpoint(
        "127.0.0.1", port=port, tls="plaintext", policy=CallPolicy(call_timeout=2), environ={}
    )
    channel = open_channel(endpoint)
    try:
        yield service, channel, endpoint
    finally:
        channel.close()
        server.stop(0)


def manager(auth_service, password: str | None = None) -> TokenManager:
    service, channel, endpoint = auth_service
    return TokenManager(
        channel, Credentials("admin", password or "password"), endpoint, clock=lambda: service.now
    )


def test_known_expiry_is_refreshed_ahead_of_time(auth_service) -> None:
    service = auth_service[0]
    tokens = manager(auth_service)
    first = tokens.access_token()
    assert tokens.access_token() == first and service.calls == ["Token"]

    service.now += service.ttl - 29  # inside the 30 s refresh margin
    second = tokens.access_token()
    assert second != first and service.calls == ["Token", "RefreshToken"]


def test_failed_refresh_falls_back_to_login(auth_service) -> None:
    service = auth_service[0]
    tokens = manager(auth_service)
    tokens.access_token()
    service.refusing_refresh = True
    service.now += service.ttl
    assert tokens.access_token()
    assert service.calls == ["Token", "RefreshToken", "Token"]


def test_rejection_is_recovered_once_for_concurrent_callers(auth_service) -> None:
    service = auth_service[0]
    tokens = manager(auth_service)
    stale = tokens.access_token()
    threads = [
        threading.Thread(target=tokens.recover_from_rejection, args=(stale,)) for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert service.calls == ["Token", "RefreshToken"]  # one refresh, the others reuse it


def test_bad_password_is_an_auth_error_naming_the_user_not_the_password(auth_service) -> None:
    tokens = manager(auth_service, password="hunter2-wrong")
    with pytest.raises(NvGridAuthError) as failure:
        tokens.access_token()
    assert "'admin'" in str(failure.value) and "hunter2-wrong" not in str(failure.value)


def test_jwt_expiry_parsing() -> None:
    assert _jwt_expiry(jwt(1234.0, 0)) == 1234.0
    assert _jwt_expiry("opaque-token") is None
    assert _jwt_expiry("a.!!!.c") is None
    assert _jwt_expiry("a.bnVsbA.c") is None  # "null"


def test_bearer_metadata() -> None:
    assert bearer_metadata("abc") == [("authorization", "Bearer abc")]
