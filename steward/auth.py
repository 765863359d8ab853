"""Bearer tokens with scopes and an optional site binding, kept hashed.

Settings hold only SHA-256 digests of tokens (`steward token new` prints a fresh
token and the entry to configure), so a leaked config file leaks no credential.
Lookups compare digests in constant time against every entry. With no tokens
configured, auth is off and the service says so loudly at start: fine on a laptop,
never in production.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from steward.errors import Forbidden, Unauthorized

Scope = Literal["ingest", "read", "admin"]


class TokenSpec(BaseModel):
    """One issued token, as configured: a name, its digest, scopes, and maybe a site."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: frozenset[Scope] = frozenset({"ingest"})
    site: str | None = None
    """When set, this token may only write records of this site."""

    @field_validator("sha256", mode="before")
    @classmethod
    def _not_the_token(cls, value: object) -> object:
        if isinstance(value, str) and value.startswith("stw_"):
            raise ValueError("this is a token, not its digest: configure the `entry` that "
                             "`steward token new` prints, and give the token to the client")
        return value


@dataclass(frozen=True)
class Principal:
    """Who made a request. `name` is safe to log; the token never is."""

    name: str
    scopes: frozenset[str]
    site: str | None


ANONYMOUS = Principal("anonymous", frozenset({"ingest", "read", "admin"}), None)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(name: str, scopes: Iterable[Scope], site: str | None) -> tuple[str, TokenSpec]:
    """A fresh random token and the spec to configure for it."""
    token = "stw_" + secrets.token_urlsafe(32)
    return token, TokenSpec(name=name, sha256=digest(token), scopes=frozenset(scopes), site=site)


class Authenticator:
    def __init__(self, tokens: Iterable[TokenSpec]) -> None:
        self.tokens = tuple(tokens)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def authenticate(self, authorization: str | None, scope: Scope) -> Principal:
        """The principal behind an `Authorization` header, if it may act in `scope`."""
        if not self.enabled:
            return ANONYMOUS
        if not authorization:
            raise Unauthorized("missing Authorization header: send 'Authorization: Bearer <token>'",
                               code="missing_token")
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'", code="not_bearer")
        wanted = digest(token.strip())
        match = None
        for spec in self.tokens:  # no early exit: time does not depend on which entry matched
            if hmac.compare_digest(spec.sha256, wanted):
                match = spec
        if match is None:
            raise Unauthorized("unknown or revoked token", code="unknown_token")
        if scope not in match.scopes:
            raise Forbidden(f"token {match.name!r} lacks the {scope!r} scope",
                            code="missing_scope")
        return Principal(match.name, frozenset(match.scopes), match.site)


def check_sites(principal: Principal, sites: Iterable[str]) -> None:
    """Refuse records for any site other than the one the token is bound to."""
    if principal.site is None:
        return
    others = sorted(set(sites) - {principal.site})
    if others:
        raise Forbidden(f"token {principal.name!r} is bound to site {principal.site!r} and "
                        f"may not write records for site(s) {', '.join(others[:5])}",
                        code="site_not_allowed")
