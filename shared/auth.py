"""Bearer JWT authentication and role/department authorisation.

Tokens are verified with PyJWT against an explicit algorithm allow-list; ``iss``, ``aud``, ``exp`` and ``sub``
are required. Keys come from a JWKS URL or a PEM file (RS256/EdDSA); HS256 is accepted only when a development
secret is configured. Claims ``roles`` and ``departments`` make the principal.

Mint a development token: ``python -m shared.auth --role responder --dept transport --sub r1``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from shared.config import AuthSettings
from shared.errors import Forbidden, TooManyRequests, Unauthorized

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"})


class Role(StrEnum):
    AGENCY_SYSTEM = "agency_system"
    RESPONDER = "responder"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    OPS = "ops"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    departments: frozenset[str] = field(default_factory=frozenset)

    def has_any(self, roles: set[Role] | frozenset[Role]) -> bool:
        return bool(self.roles & roles)

    def can_see_department(self, department: str) -> bool:
        """Admins and ops see every department; others only their own."""
        return bool(self.roles & {Role.ADMIN, Role.OPS}) or department in self.departments


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._asymmetric = [a for a in settings.algorithms if a in ASYMMETRIC_ALGORITHMS]
        self._public_key: str | None = None
        if settings.public_key_file:
            self._public_key = Path(settings.public_key_file).read_text()
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True) if settings.jwks_url else None
        self._secret = settings.dev_secret.get_secret_value() if settings.dev_secret else None
        # token -> (principal, expiry, cached until): an agency system sends the same token with every
        # request; checking its signature and claims again each time was ~13% of ingest's CPU per post.
        self._verified: dict[str, tuple[Principal, float, float]] = {}

    #: How many verified tokens are remembered, and for how long at most (a signing key removed from the
    #: JWKS stops being honoured within this time even for tokens that have not expired).
    CACHE_SIZE = 1024
    CACHE_SECONDS = 60.0

    async def verify(self, token: str) -> Principal:
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None:
            principal, expires, until = hit
            if now < until and now < expires + self.settings.leeway_seconds:
                return principal
            del self._verified[token]
        principal, expires = await self._verify(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = (principal, expires, now + self.CACHE_SECONDS)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The bearer token is malformed.") from exc
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self._secret:
            key, allowed = self._secret, ["HS256"]
        elif alg in self._asymmetric and self._jwks is not None:
            try:
                # PyJWKClient does blocking I/O (cached after the first fetch): keep it off the event loop.
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            except jwt.PyJWTError as exc:
                raise Unauthorized("The token's signing key is not known.") from exc
            key, allowed = signing_key.key, self._asymmetric
        elif alg in self._asymmetric and self._public_key is not None:
            key, allowed = self._public_key, self._asymmetric
        else:
            raise Unauthorized("The token's algorithm is not accepted.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=allowed,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The bearer token is not valid: {exc}.") from exc
        return principal_from_claims(claims), float(claims["exp"])


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    roles_raw = claims.get("roles", [])
    depts_raw = claims.get("departments", [])
    if not isinstance(roles_raw, list) or not isinstance(depts_raw, list):
        raise Unauthorized("The token's roles and departments must be lists.")
    roles = frozenset(Role(r) for r in roles_raw if r in Role.__members__.values())
    if not roles:
        raise Unauthorized("The token carries no known role.")
    return Principal(
        subject=str(claims["sub"]),
        roles=roles,
        departments=frozenset(str(d)[:100] for d in depts_raw[:100]),
    )


def _bearer(request: Request) -> str:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


#: Scope key of the principal once ``authenticated`` has run for the request.
PRINCIPAL_SCOPE_KEY = "switchboard.principal"


async def authenticated(request: Request) -> Principal:
    """The request's principal: the bearer token verified and the principal's rate budget charged, once per
    request (a role gate and a router-level dependency may both ask); also ``request.state.principal``."""
    scope = request.scope
    principal: Principal | None = scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is not None:
        return principal
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(_bearer(request))
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        wait = limiter.retry_after(principal.subject, system=Role.AGENCY_SYSTEM in principal.roles)
        if wait:
            raise TooManyRequests(
                f"Too many requests from this principal; retry in {wait} s.", retry_after=wait
            )
    scope[PRINCIPAL_SCOPE_KEY] = principal
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticated)]


#: Attribute of a ``require_roles`` dependency holding the roles it lets through.
ALLOWED_ROLES_ATTRIBUTE = "allowed_roles"


def require_roles(*roles: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """Dependency: an authenticated caller holding one of ``roles``; admin is always allowed.

    It authenticates by itself (``authenticated`` runs once per request) instead of depending on
    ``CurrentPrincipal``: one dependency layer fewer on every request."""
    allowed = frozenset(roles) | {Role.ADMIN}

    async def dependency(request: Request) -> Principal:
        principal = await authenticated(request)
        if not principal.roles & allowed:
            raise Forbidden(f"This operation needs one of the roles: {', '.join(sorted(allowed))}.")
        return principal

    # Read by the authorisation tests (tests/security), which derive the role x endpoint matrix from it.
    setattr(dependency, ALLOWED_ROLES_ATTRIBUTE, allowed)
    return dependency


def sign_token(
    *,
    key: Any,
    algorithm: str,
    subject: str,
    roles: list[str],
    departments: list[str],
    issuer: str = "switchboard",
    audience: str = "switchboard",
    ttl_seconds: int = 8 * 3600,
) -> str:
    """A bearer token with the claims the verifier requires, signed with ``key``."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "roles": roles,
        "departments": departments,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, key, algorithm=algorithm)


def mint_dev_token(
    *,
    secret: str,
    subject: str,
    roles: list[str],
    departments: list[str],
    issuer: str = "switchboard",
    audience: str = "switchboard",
    ttl_seconds: int = 8 * 3600,
) -> str:
    """An HS256 development token (accepted only where AUTH_DEV_SECRET is set)."""
    return sign_token(
        key=secret,
        algorithm="HS256",
        subject=subject,
        roles=roles,
        departments=departments,
        issuer=issuer,
        audience=audience,
        ttl_seconds=ttl_seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Mint a development (HS256) token.")
    parser.add_argument("--role", action="append", required=True, choices=[r.value for r in Role])
    parser.add_argument("--dept", action="append", default=[])
    parser.add_argument("--sub", default="dev-user")
    parser.add_argument("--ttl", type=int, default=8 * 3600)
    args = parser.parse_args()
    settings = AuthSettings()
    secret = (
        settings.dev_secret.get_secret_value() if settings.dev_secret else os.environ.get("AUTH_DEV_SECRET")
    )
    if not secret:
        raise SystemExit("AUTH_DEV_SECRET is not set (make token reads it from var/dev-secret).")
    print(
        mint_dev_token(
            secret=secret,
            subject=args.sub,
            roles=args.role,
            departments=[d for d in args.dept if d],
            issuer=settings.issuer,
            audience=settings.audience,
            ttl_seconds=args.ttl,
        )
    )


if __name__ == "__main__":
    main()
