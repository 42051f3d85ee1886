"""Where DPS NvGrid is, how to talk TLS to it, who we are, and how patient to be.

Plain dataclasses plus their builders from the environment. Nothing here imports grpc, so the
CLI can validate its flags (and ``--help`` stays fast) before the gRPC runtime is loaded.

Environment variables:

``NVGRID_HOST``              host name or address, may carry ``:port`` (``[v6]:port`` for IPv6)
``NVGRID_PORT``              port when the host does not carry one (default 443)
``NVGRID_TLS``               ``verify`` (default), ``skip-verify`` (dev only), ``plaintext``
``NVGRID_CA_CERT``           PEM file of the CA that signed DPS's certificate (default:
                             the system roots)
``NVGRID_USERNAME``/``NVGRID_PASSWORD``  credentials, or
``NVGRID_CREDENTIALS_FILE``  a mounted secret holding ``username:password`` or
                             ``{"username": ..., "password": ...}``
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NvGridConfigError

__all__ = [
    "DEFAULT_PORT",
    "CallPolicy",
    "Credentials",
    "NvGridEndpoint",
    "TlsMode",
    "credentials_from_env",
    "credentials_from_file",
    "endpoint_from_env",
    "make_endpoint",
    "split_host_port",
]

DEFAULT_PORT = 443
DEFAULT_HOST = "localhost"


class TlsMode(enum.StrEnum):
    """How the channel protects (or does not protect) the connection."""

    VERIFY = "verify"  # TLS, server certificate checked against the CA (or system roots)
    SKIP_VERIFY = "skip-verify"  # TLS, whatever certificate the server shows is trusted
    PLAINTEXT = "plaintext"  # no TLS at all

    @classmethod
    def parse(cls, raw: str, *, source: str = "NVGRID_TLS") -> TlsMode:
        value = raw.strip().lower().replace("_", "-")
        aliases = {
            "insecure": "plaintext",
            "skip": "skip-verify",
            "insecure-skip-verify": "skip-verify",
        }
        value = aliases.get(value, value)
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise NvGridConfigError(
                f"{source}={raw!r} is not a TLS mode; use one of: {choices}"
            ) from None


@dataclass(frozen=True)
class CallPolicy:
    """Deadlines and retries for every RPC (the token RPCs included).

    A call is retried only on UNAVAILABLE / DEADLINE_EXCEEDED, with exponential backoff and
    full jitter (sleep uniformly in [0, min(max_backoff, initial_backoff * 2**n)]), until
    ``max_attempts`` or ``overall_timeout`` is reached, whichever comes first.
    """

    call_timeout: float = 10.0
    overall_timeout: float = 30.0
    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 5.0

    def __post_init__(self) -> None:
        if self.call_timeout <= 0 or self.overall_timeout <= 0:
            raise NvGridConfigError("call_timeout and overall_timeout must be positive seconds")
        if self.max_attempts < 1:
            raise NvGridConfigError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise NvGridConfigError("backoff times must not be negative")


@dataclass(frozen=True)
class NvGridEndpoint:
    """One DPS NvGrid API endpoint and how to secure the connection to it."""

    host: str
    port: int = DEFAULT_PORT
    tls: TlsMode = TlsMode.VERIFY
    ca_cert_path: Path | None = None
    # Name to check the certificate against when it differs from ``host`` (e.g. dialling an IP).
    tls_server_name: str | None = None
    policy: CallPolicy = field(default_factory=CallPolicy)

    def __post_init__(self) -> None:
        if not self.host:
            raise NvGridConfigError("NvGrid host is empty: set NVGRID_HOST or pass --host")
        if not 0 < self.port < 65536:
            raise NvGridConfigError(f"NvGrid port {self.port} is out of range 1-65535")
        ca_missing = self.ca_cert_path is not None and not Path(self.ca_cert_path).is_file()
        if self.tls is TlsMode.VERIFY and ca_missing:
            raise NvGridConfigError(
                f"CA certificate {self.ca_cert_path} does not exist or is not a file: "
                "fix NVGRID_CA_CERT / --ca-cert-path"
            )

    @property
    def address(self) -> str:
        """``host:port`` as gRPC dials it (IPv6 literals bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.address


@dataclass(frozen=True)
class Credentials:
    """A DPS user; the password never appears in ``repr`` (so never in a log line)."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.username or not self.password:
            raise NvGridConfigError(
                "NvGrid credentials need both a username and a password: set NVGRID_USERNAME "
                "and NVGRID_PASSWORD, or NVGRID_CREDENTIALS_FILE"
            )


def split_host_port(host: str) -> tuple[str, int | None]:
    """``'api.dps:8443'`` -> ``('api.dps', 8443)``; ``'[::1]:50051'`` -> ``('::1', 50051)``.

    A bare IPv6 literal (several colons, no brackets) has no port.
    """
    host = host.strip()
    if host.startswith("["):
        inner, sep, rest = host[1:].partition("]")
        if not sep:
            raise NvGridConfigError(f"NvGrid host {host!r} has an unclosed '['")
        if not rest:
            return inner, None
        if not rest.startswith(":"):
            raise NvGridConfigError(f"NvGrid host {host!r}: expected ':port' after ']'")
        return inner, _parse_port(rest[1:], source=f"host {host!r}")
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, _parse_port(port, source=f"host {host!r}")
    return host, None


def _parse_port(raw: str | int, *, source: str) -> int:
    try:
        port = int(raw)
    except (TypeError, ValueError):
        raise NvGridConfigError(f"{source}: port {raw!r} is not a number") from None
    if not 0 < port < 65536:
        raise NvGridConfigError(f"{source}: port {port} is out of range 1-65535")
    return port


def make_endpoint(
    host: str | None = None,
    *,
    port: int | str | None = None,
    tls: TlsMode | str | None = None,
    ca_cert_path: str | os.PathLike[str] | None = None,
    tls_server_name: str | None = None,
    policy: CallPolicy | None = None,
    environ: Mapping[str, str] | None = None,
) -> NvGridEndpoint:
    """An endpoint from explicit values, each falling back to its ``NVGRID_*`` variable.

    A port carried by ``host`` wins over ``NVGRID_PORT``; if ``port`` is also passed
    explicitly and disagrees with it, that is an error rather than a silent choice.
    """
    env = os.environ if environ is None else environ
    raw_host = host if host else env.get("NVGRID_HOST") or DEFAULT_HOST
    name, host_port = split_host_port(raw_host)

    if port is not None and port != "":
        explicit_port = _parse_port(port, source="port")
        if host_port is not None and host_port != explicit_port:
            raise NvGridConfigError(
                f"NvGrid host {raw_host!r} carries port {host_port} but port {explicit_port} "
                "was also given; pass only one"
            )
        final_port = explicit_port
    elif host_port is not None:
        final_port = host_port
    elif env.get("NVGRID_PORT"):
        final_port = _parse_port(env["NVGRID_PORT"], source="NVGRID_PORT")
    else:
        final_port = DEFAULT_PORT

    if tls is None or tls == "":
        tls_mode = TlsMode.parse(env.get("NVGRID_TLS") or TlsMode.VERIFY.value)
    elif isinstance(tls, TlsMode):
        tls_mode = tls
    else:
        tls_mode = TlsMode.parse(tls, source="tls")

    ca = ca_cert_path if ca_cert_path else env.get("NVGRID_CA_CERT") or None
    return NvGridEndpoint(
        host=name,
        port=final_port,
        tls=tls_mode,
        ca_cert_path=Path(ca) if ca else None,
        tls_server_name=tls_server_name,
        policy=policy or CallPolicy(),
    )


def endpoint_from_env(
    environ: Mapping[str, str] | None = None, *, policy: CallPolicy | None = None
) -> NvGridEndpoint:
    """The endpoint that ``NVGRID_HOST``/``_PORT``/``_TLS``/``_CA_CERT`` describe."""
    return make_endpoint(environ=environ, policy=policy)


def credentials_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
) -> Credentials:
    """Credentials: explicit values, else ``NVGRID_USERNAME``/``_PASSWORD``, else the file.

    The file (``NVGRID_CREDENTIALS_FILE``, typically a mounted Secret Manager secret) holds
    either ``username:password`` or ``{"username": ..., "password": ...}``.
    """
    env = os.environ if environ is None else environ
    user = username or env.get("NVGRID_USERNAME") or ""
    secret = password or env.get("NVGRID_PASSWORD") or ""
    if user and secret:
        return Credentials(user, secret)

    path = env.get("NVGRID_CREDENTIALS_FILE")
    if path:
        file_user, file_secret = _read_credentials_file(Path(path))
        return Credentials(user or file_user, secret or file_secret)
    missing = "NVGRID_PASSWORD" if user else "NVGRID_USERNAME"
    raise NvGridConfigError(
        f"no NvGrid credentials: {missing} is not set; set NVGRID_USERNAME and NVGRID_PASSWORD, "
        "or NVGRID_CREDENTIALS_FILE (a file with 'username:password' or JSON)"
    )


def credentials_from_file(path: Path, *, source: str = "NVGRID_CREDENTIALS_FILE") -> Credentials:
    """Credentials from a mounted secret holding ``username:password`` or
    ``{"username": ..., "password": ...}``; ``source`` names the setting in errors (a
    site's ``nvgrid_credentials_file``, say)."""
    return Credentials(*_read_credentials_file(path, source))


def _read_credentials_file(path: Path, source: str = "NVGRID_CREDENTIALS_FILE") -> tuple[str, str]:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        # The OS error names the path and the reason; it never contains the file's content.
        raise NvGridConfigError(
            f"{source}={path} cannot be read ({exc.strerror}): check the mount"
        ) from None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("username"), str)
            or not isinstance(data.get("password"), str)
        ):
            raise NvGridConfigError(
                f"{source}={path} is not JSON with string 'username' and 'password'"
            )
        return data["username"], data["password"]
    user, sep, secret = text.partition(":")
    if not sep or not user or not secret:
        raise NvGridConfigError(
            f"{source}={path} must hold 'username:password' or "
            '{"username": ..., "password": ...}'
        )
    return user, secret
