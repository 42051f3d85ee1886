"""AuthService through real gRPC: tokens, bearer metadata, expiry, refresh; TLS; reflection."""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from dpsapi.v1 import auth_pb2, auth_pb2_grpc, nvgrid_pb2_grpc
from simulator import Simulator

from .support import PASSWORD, USER, Client, SimFactory, connect, open_channel


def _token_request(username: str = USER, password: str = PASSWORD) -> auth_pb2.TokenRequest:
    return auth_pb2.TokenRequest(
        password_credential=auth_pb2.PasswordCredential(username=username, password=password)
    )


def _status_code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code()


def test_token_then_call_with_bearer(sim_and_client: tuple[Simulator, Client]) -> None:
    _, client = sim_and_client
    tokens = client.auth.Token(_token_request(), timeout=5)
    assert tokens.access_token and tokens.refresh_token
    assert tokens.access_token != tokens.refresh_token
    metadata = [("authorization", f"Bearer {tokens.access_token}")]
    assert client.nvgrid.GetStatus(empty_pb2.Empty(), metadata=metadata, timeout=5).statuses


@pytest.mark.parametrize(
    ("username", "password"), [(USER, "wrong"), ("nobody", PASSWORD), (USER, "")]
)
def test_bad_credentials_are_unauthenticated(
    sim_client: tuple[Simulator, Client], username: str, password: str
) -> None:
    _, client = sim_client
    code = _status_code(lambda: client.auth.Token(_token_request(username, password), timeout=5))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_token_without_credential_is_invalid_argument(sim_client: tuple[Simulator, Client]) -> None:
    _, client = sim_client
    code = _status_code(lambda: client.auth.Token(auth_pb2.TokenRequest(), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "metadata",
    [
        [],
        [("authorization", "Bearer not-a-token")],
        [("authorization", "Basic YWRtaW46cGFzc3dvcmQ=")],
        [("authorization", "Bearer ")],
    ],
)
def test_nvgrid_without_a_valid_bearer_is_unauthenticated(
    sim_client: tuple[Simulator, Client], metadata: list[tuple[str, str]]
) -> None:
    _, client = sim_client
    code = _status_code(
        lambda: client.nvgrid.GetMetadata(empty_pb2.Empty(), metadata=metadata, timeout=5)
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_access_token_expires_and_refresh_token_renews_it(make_sim: SimFactory) -> None:
    sim = make_sim(token_ttl=0.3)
    with open_channel(sim) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        nvgrid = nvgrid_pb2_grpc.NvGridStub(channel)
        tokens = auth.Token(_token_request(), timeout=5)
        bearer = [("authorization", f"Bearer {tokens.access_token}")]
        nvgrid.GetMetadata(empty_pb2.Empty(), metadata=bearer, timeout=5)
        time.sleep(0.4)  # just past the 0.3 s lifetime
        expired = _status_code(
            lambda: nvgrid.GetMetadata(empty_pb2.Empty(), metadata=bearer, timeout=5)
        )
        assert expired == grpc.StatusCode.UNAUTHENTICATED

        renewed = auth.RefreshToken(
            auth_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token), timeout=5
        )
        fresh = [("authorization", f"Bearer {renewed.access_token}")]
        assert nvgrid.GetMetadata(empty_pb2.Empty(), metadata=fresh, timeout=5).metadata
        # Refresh tokens rotate: the used one is spent.
        reused = _status_code(
            lambda: auth.RefreshToken(
                auth_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token), timeout=5
            )
        )
        assert reused == grpc.StatusCode.UNAUTHENTICATED


def test_expire_tokens_knob_and_unknown_refresh_token(sim_client: tuple[Simulator, Client]) -> None:
    sim, client = sim_client
    client.nvgrid.GetStatus(empty_pb2.Empty(), metadata=client.metadata, timeout=5)
    sim.expire_tokens()
    code = _status_code(
        lambda: client.nvgrid.GetStatus(empty_pb2.Empty(), metadata=client.metadata, timeout=5)
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code = _status_code(
        lambda: client.auth.RefreshToken(
            auth_pb2.RefreshTokenRequest(refresh_token="nope"), timeout=5
        )
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_tls_rejects_a_client_that_does_not_trust_the_ca(make_sim: SimFactory) -> None:
    sim = make_sim(insecure=False)
    assert sim.ca_cert_path is not None and sim.ca_cert_path.is_file()
    untrusting = grpc.secure_channel(f"localhost:{sim.port}", grpc.ssl_channel_credentials())
    with untrusting:
        auth = auth_pb2_grpc.AuthServiceStub(untrusting)
        code = _status_code(lambda: auth.Token(_token_request(), timeout=3))
    assert code == grpc.StatusCode.UNAVAILABLE
    # The same call with the generated CA works, by IP as well as by name (both are SANs).
    credentials = grpc.ssl_channel_credentials(sim.ca_cert_path.read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{sim.port}", credentials) as channel:
        assert (
            auth_pb2_grpc.AuthServiceStub(channel).Token(_token_request(), timeout=5).access_token
        )
    connect(sim).channel.close()


def test_plaintext_client_cannot_talk_to_tls_server(make_sim: SimFactory) -> None:
    sim = make_sim(insecure=False)
    with grpc.insecure_channel(sim.address) as channel:
        code = _status_code(
            lambda: auth_pb2_grpc.AuthServiceStub(channel).Token(_token_request(), timeout=3)
        )
    assert code == grpc.StatusCode.UNAVAILABLE


def test_tls_dir_keeps_the_same_ca_across_restarts(make_sim: SimFactory, tmp_path: object) -> None:
    first = make_sim(insecure=False, tls_dir=tmp_path)
    ca = first.ca_cert_path.read_bytes()  # type: ignore[union-attr]
    first.stop()
    second = make_sim(insecure=False, tls_dir=tmp_path)
    assert second.ca_cert_path.read_bytes() == ca  # type: ignore[union-attr]
    connect(second).channel.close()


def test_server_reflection_lists_the_services(sim_and_client: tuple[Simulator, Client]) -> None:
    _, client = sim_and_client
    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    services = {s.name for r in responses for s in r.list_services_response.service}
    assert {"nvidia.dcpower.v1.NvGrid", "nvidia.dcpower.v1.AuthService"} <= services
    responses = stub.ServerReflectionInfo(
        iter(
            [
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="nvidia.dcpower.v1.NvGrid"
                )
            ]
        ),
        timeout=5,
    )
    assert any(r.file_descriptor_response.file_descriptor_proto for r in responses)
