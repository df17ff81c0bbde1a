"""The bearer-token gate: every way a token can be wrong is a 401, never a 500."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from shared.auth import Role, TokenVerifier, mint_dev_token
from shared.config import AuthSettings
from shared.errors import Unauthorized

SECRET = "unit-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef"


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "r1",
        "roles": ["responder"],
        "departments": ["transport"],
        "iss": "switchboard",
        "aud": "switchboard",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs_verifier() -> TokenVerifier:
    return TokenVerifier(AuthSettings(dev_secret=SECRET))


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_verifier(tmp_path: Path, private_key: Any, *, dev_secret: str | None = None) -> TokenVerifier:
    path = tmp_path / "key.pem"
    path.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return TokenVerifier(AuthSettings(public_key_file=str(path), dev_secret=dev_secret))


class TestValidTokens:
    async def test_dev_token_gives_principal_with_roles_and_departments(self) -> None:
        token = mint_dev_token(secret=SECRET, subject="r1", roles=["responder"], departments=["transport"])
        principal = await hs_verifier().verify(token)
        assert principal.subject == "r1"
        assert principal.roles == {Role.RESPONDER}
        assert principal.departments == {"transport"}
        assert principal.can_see_department("transport")
        assert not principal.can_see_department("health")

    async def test_rs256_token_verified_with_pem_public_key(self, tmp_path: Path, rsa_key: Any) -> None:
        token = jwt.encode(claims(), rsa_key, algorithm="RS256")
        principal = await pem_verifier(tmp_path, rsa_key).verify(token)
        assert principal.subject == "r1"

    async def test_eddsa_token_verified_with_pem_public_key(self, tmp_path: Path) -> None:
        key = ed25519.Ed25519PrivateKey.generate()
        token = jwt.encode(claims(roles=["admin"]), key, algorithm="EdDSA")
        principal = await pem_verifier(tmp_path, key).verify(token)
        assert principal.can_see_department("anything")


class TestRejectedTokens:
    @pytest.mark.parametrize(
        "token",
        [
            "",
            "garbage",
            "a.b.c",
            jwt.encode(claims(exp=int(time.time()) - 3600), SECRET, algorithm="HS256"),
            jwt.encode(claims(nbf=int(time.time()) + 3600), SECRET, algorithm="HS256"),
            jwt.encode(claims(iss="someone-else"), SECRET, algorithm="HS256"),
            jwt.encode(claims(aud="another-api"), SECRET, algorithm="HS256"),
            jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
            jwt.encode(claims(sub=None), SECRET, algorithm="HS256"),
            jwt.encode(claims(roles=["superuser"]), SECRET, algorithm="HS256"),
            jwt.encode(claims(roles="admin"), SECRET, algorithm="HS256"),
            jwt.encode(claims(), "a-different-secret-0123456789abcdef", algorithm="HS256"),
            jwt.encode(claims(), SECRET, algorithm="HS512"),
            jwt.encode(claims(), None, algorithm="none"),  # type: ignore[arg-type]
        ],
        ids=[
            "empty",
            "garbage",
            "three-dots",
            "expired",
            "not-yet-valid",
            "wrong-iss",
            "wrong-aud",
            "no-exp",
            "no-sub",
            "unknown-role",
            "roles-not-a-list",
            "wrong-secret",
            "hs512-not-allowed",
            "alg-none",
        ],
    )
    async def test_is_401(self, token: str) -> None:
        with pytest.raises(Unauthorized):
            await hs_verifier().verify(token)

    async def test_hs256_token_is_refused_when_no_dev_secret_is_configured(
        self, tmp_path: Path, rsa_key: Any
    ) -> None:
        public_pem = rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # The classic confusion attack: sign HS256 with the public key as the HMAC secret
        # (built by hand: PyJWT itself refuses to make such a token).
        header = base64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = base64url(json.dumps(claims()).encode())
        signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        forged = f"{header}.{payload}.{base64url(signature)}"
        with pytest.raises(Unauthorized):
            await pem_verifier(tmp_path, rsa_key).verify(forged)

    async def test_token_signed_by_a_foreign_key_is_refused(self, tmp_path: Path, rsa_key: Any) -> None:
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode(claims(), other, algorithm="RS256")
        with pytest.raises(Unauthorized):
            await pem_verifier(tmp_path, rsa_key).verify(token)


async def test_verified_tokens_are_remembered_until_they_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(AuthSettings(dev_secret=SECRET, leeway_seconds=0))
    expires = int(time.time()) + 2
    token = jwt.encode(claims(exp=expires), SECRET, algorithm="HS256")
    first = await verifier.verify(token)
    calls = 0
    real = verifier._verify

    async def counting(t: str) -> Any:
        nonlocal calls
        calls += 1
        return await real(t)

    monkeypatch.setattr(verifier, "_verify", counting)
    assert await verifier.verify(token) == first
    assert calls == 0  # the signature was not checked again
    # Past its expiry the remembered token is checked again, and refused.
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.1)
    with pytest.raises(Unauthorized):
        await verifier.verify(token)
    assert calls == 1


async def test_a_refused_token_is_not_remembered() -> None:
    verifier = hs_verifier()
    bad = jwt.encode(claims(), "another-secret-0123456789abcdef-0123456789abcdef-01234567", algorithm="HS256")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(bad)
    assert verifier._verified == {}
