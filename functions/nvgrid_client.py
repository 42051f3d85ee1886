"""The helpers NVIDIA's DPS examples import (``from nvgrid_client import ...``).

The "Monitoring Power Events" examples call, unchanged::

    token = get_auth_token('admin', 'password', host='api.dps')
    channel, stub = create_nvgrid_client(token, host='api.dps')
    metadata = create_auth_metadata(token)

so everything the examples do not pass — port, TLS mode, CA certificate — is a keyword
argument whose default comes from the environment:

``NVGRID_PORT``     port when ``host`` carries none (default 443)
``NVGRID_TLS``      ``verify`` (default), ``skip-verify`` (development only), ``plaintext``
``NVGRID_CA_CERT``  PEM file of the CA that signed DPS's certificate (default: system roots)

These are thin wrappers over :mod:`gridhook.nvgrid`, which gridhook itself uses (with token
refresh and retries built in); the returned stub is the raw generated one, as the examples
expect, so calls through it are not retried.
"""

from __future__ import annotations

import os

import grpc

from dpsapi.v1 import nvgrid_pb2_grpc
from gridhook.nvgrid.auth import TokenManager, bearer_metadata
from gridhook.nvgrid.channel import open_channel
from gridhook.nvgrid.config import Credentials, NvGridEndpoint, TlsMode, make_endpoint

__all__ = ["create_auth_metadata", "create_nvgrid_client", "get_auth_token"]


def _endpoint(
    host: str | None,
    port: int | str | None,
    tls: TlsMode | str | None,
    ca_cert: str | os.PathLike[str] | None,
) -> NvGridEndpoint:
    return make_endpoint(host, port=port, tls=tls, ca_cert_path=ca_cert)


def get_auth_token(
    username: str,
    password: str,
    host: str | None = None,
    *,
    port: int | str | None = None,
    tls: TlsMode | str | None = None,
    ca_cert: str | os.PathLike[str] | None = None,
) -> str:
    """Log in to DPS (``AuthService.Token``) and return the access token.

    ``host`` may carry ``:port``; ``None`` means ``NVGRID_HOST`` (default ``localhost``).
    Raises :class:`gridhook.nvgrid.NvGridError` subclasses with a message saying what to do.
    """
    endpoint = _endpoint(host, port, tls, ca_cert)
    channel = open_channel(endpoint)
    try:
        return TokenManager(channel, Credentials(username, password), endpoint).login()
    finally:
        channel.close()


def create_nvgrid_client(
    token: str,
    host: str | None = None,
    *,
    port: int | str | None = None,
    tls: TlsMode | str | None = None,
    ca_cert: str | os.PathLike[str] | None = None,
) -> tuple[grpc.Channel, nvgrid_pb2_grpc.NvGridStub]:
    """A channel to DPS and an ``NvGrid`` stub on it; close the channel when done.

    ``token`` is accepted for the examples' signature; the token travels per call, in the
    metadata from :func:`create_auth_metadata`, exactly as the examples pass it.
    """
    del token  # per-call metadata carries it; binding it to the channel would send it twice
    channel = open_channel(_endpoint(host, port, tls, ca_cert))
    return channel, nvgrid_pb2_grpc.NvGridStub(channel)


def create_auth_metadata(token: str) -> list[tuple[str, str]]:
    """``[("authorization", "Bearer <token>")]``, the metadata every NvGrid call carries."""
    return bearer_metadata(token)
