"""Optional TLS: the server side (collector, API) and the clients that call them.

Off by default (plain HTTP on a laptop or behind a TLS-terminating proxy). With a
certificate and key set, uvicorn serves HTTPS; with a client CA as well, it asks every
caller for a certificate signed by that CA (mutual TLS) on top of the bearer token.
Clients (edge agent, processors) trust the system store, or a CA bundle when one is set
(a private CA or a self-signed certificate).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, model_validator


class ServerTls(BaseModel):
    """`STEWARD_TLS__CERTFILE`, `STEWARD_TLS__KEYFILE`, `STEWARD_TLS__CLIENT_CA`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    certfile: Path | None = None
    """PEM certificate chain served to clients."""
    keyfile: Path | None = None
    """PEM private key of `certfile`."""
    client_ca: Path | None = None
    """PEM CA bundle: when set, clients must present a certificate it signed."""

    @model_validator(mode="after")
    def _pairs(self) -> ServerTls:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("tls.certfile and tls.keyfile go together: set both or neither")
        if self.client_ca is not None and self.certfile is None:
            raise ValueError("tls.client_ca needs tls.certfile and tls.keyfile")
        for path in (self.certfile, self.keyfile, self.client_ca):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    @property
    def enabled(self) -> bool:
        return self.certfile is not None

    @property
    def scheme(self) -> str:
        return "https" if self.enabled else "http"

    def uvicorn_kwargs(self) -> dict[str, Any]:
        """What `uvicorn.run` takes for this: nothing when TLS is off."""
        if not self.enabled:
            return {}
        kwargs: dict[str, Any] = {"ssl_certfile": str(self.certfile),
                                  "ssl_keyfile": str(self.keyfile)}
        if self.client_ca is not None:
            kwargs |= {"ssl_ca_certs": str(self.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
        return kwargs


def http_client(*, timeout: float, token: SecretStr | None = None,
                ca_bundle: Path | None = None) -> httpx.Client:
    """A client for Steward's own services: the bearer token on every request, and the
    server's certificate checked against `ca_bundle` (else the system store)."""
    headers = {"authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    verify: ssl.SSLContext | bool = True
    if ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(ca_bundle))
    return httpx.Client(timeout=timeout, headers=headers, verify=verify)
