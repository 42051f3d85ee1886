"""Open a gRPC channel to an :class:`NvGridEndpoint` in its TLS mode.

``verify``
    TLS, the server certificate is checked against ``ca_cert_path`` (or the system roots).
``plaintext``
    No TLS (``--insecure``): for a local simulator or a trusted sidecar only.
``skip-verify``
    gRPC Python has no "don't verify" switch. We fetch the certificate the server presents
    (``ssl.get_server_certificate``, one extra TLS handshake, unverified) and make *that*
    certificate the only trust root of the channel, with ``grpc.ssl_target_name_override`` set
    to a name it carries. Trade-off: the connection is encrypted but not authenticated, so a
    machine in the middle at the time of the first handshake is trusted for the channel's life
    (trust on first use); and if the server rotates its certificate while the channel is open,
    reconnects fail until a new channel is made. Development only — use ``verify`` with the
    DPS CA (``NVGRID_CA_CERT``) everywhere else.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from pathlib import Path

import grpc

from .config import NvGridEndpoint, TlsMode
from .errors import NvGridConfigError, NvGridTlsError

__all__ = ["fetch_server_certificate", "open_channel"]

# Keepalive so a long-lived channel (the reconciler's) notices a dead connection, and a
# bounded reconnect backoff so a DPS restart is picked up quickly.
_CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


def open_channel(endpoint: NvGridEndpoint) -> grpc.Channel:
    """A channel to ``endpoint``; it connects lazily, on the first call."""
    options = list(_CHANNEL_OPTIONS)
    if endpoint.tls is TlsMode.PLAINTEXT:
        return grpc.insecure_channel(endpoint.address, options=options)

    root_certificates: bytes | None
    server_name: str | None
    if endpoint.tls is TlsMode.SKIP_VERIFY:
        pem = fetch_server_certificate(endpoint)
        root_certificates = pem.encode("ascii")
        names = _certificate_names(pem)
        # Keep the dialled name when the certificate covers it; otherwise borrow one it has.
        server_name = endpoint.tls_server_name or (
            endpoint.host if endpoint.host in names or not names else names[0]
        )
    else:
        root_certificates = _read_ca(endpoint)
        server_name = endpoint.tls_server_name

    if server_name and server_name != endpoint.host:
        options.append(("grpc.ssl_target_name_override", server_name))
    credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
    return grpc.secure_channel(endpoint.address, credentials, options=options)


def _read_ca(endpoint: NvGridEndpoint) -> bytes | None:
    if endpoint.ca_cert_path is None:
        return None  # gRPC falls back to the system trust roots
    try:
        data = Path(endpoint.ca_cert_path).read_bytes()
    except OSError as exc:
        raise NvGridConfigError(
            f"cannot read CA certificate {endpoint.ca_cert_path} for NvGrid at {endpoint} "
            f"({exc.strerror}): fix NVGRID_CA_CERT / --ca-cert-path",
            endpoint=endpoint.address,
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise NvGridConfigError(
            f"{endpoint.ca_cert_path} is not a PEM certificate (no 'BEGIN CERTIFICATE'): "
            "fix NVGRID_CA_CERT / --ca-cert-path",
            endpoint=endpoint.address,
        )
    return data


def fetch_server_certificate(endpoint: NvGridEndpoint) -> str:
    """The PEM certificate ``endpoint`` presents, fetched WITHOUT verification (skip-verify)."""
    timeout = min(endpoint.policy.call_timeout, 10.0)
    try:
        return ssl.get_server_certificate((endpoint.host, endpoint.port), timeout=timeout)
    except (TimeoutError, OSError, ssl.SSLError) as exc:
        raise NvGridTlsError(
            f"cannot fetch the TLS certificate of NvGrid at {endpoint} for skip-verify "
            f"({type(exc).__name__}: {exc}): check that DPS is up, and whether it serves TLS "
            "at all (if not, use NVGRID_TLS=plaintext / --insecure)",
            endpoint=endpoint.address,
        ) from None


def _certificate_names(pem: str) -> list[str]:
    """The DNS names / IPs the certificate is valid for, so the name check passes (skip-verify).

    The stdlib has no public PEM parser; ``ssl._ssl._test_decode_cert`` is private but has been
    stable since Python 2.7. If it ever goes away we fall back to the dialled host name.
    """
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return []
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(pem)
        decoded = decode(path)
    except (OSError, ssl.SSLError, ValueError):
        return []
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    names = [
        str(value)
        for kind, value in decoded.get("subjectAltName", ())
        if kind in ("DNS", "IP Address") and "*" not in value
    ]
    if not names:  # very old certificates name the host only in the subject's CN
        names = [str(v) for rdn in decoded.get("subject", ()) for k, v in rdn if k == "commonName"]
    return names
