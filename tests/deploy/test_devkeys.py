"""deploy/devkeys.py: the Compose stack's secrets, and tokens the services accept with its public key."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.auth import TokenVerifier
from shared.config import AuthSettings
from shared.errors import Unauthorized
from tests.deploy.support import DEPLOY, SERVICES, load_script

devkeys = load_script(DEPLOY / "devkeys.py")


def test_init_keeps_existing_files(tmp_path: Path) -> None:
    devkeys.init(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    devkeys.init(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_each_database_url_carries_that_services_password(tmp_path: Path) -> None:
    devkeys.init(tmp_path)
    passwords = set()
    for name in SERVICES:
        password = (tmp_path / f"{name}_db_password").read_text()
        passwords.add(password)
        assert (tmp_path / f"{name}_database_url").read_text() == devkeys.database_url(name, password)
    assert len(passwords) == len(SERVICES)
    assert (tmp_path / devkeys.PRIVATE_KEY).stat().st_mode & 0o077 == 0


async def test_a_minted_token_is_accepted_with_the_public_key_file(tmp_path: Path) -> None:
    devkeys.init(tmp_path)
    token = devkeys.token(tmp_path, subject="r1", roles=["responder"], departments=["transport"])
    verifier = TokenVerifier(AuthSettings(public_key_file=str(tmp_path / devkeys.PUBLIC_KEY)))
    principal = await verifier.verify(token)
    assert principal.subject == "r1"
    assert principal.departments == frozenset({"transport"})


async def test_a_token_from_another_key_is_refused(tmp_path: Path) -> None:
    devkeys.init(tmp_path / "a")
    devkeys.init(tmp_path / "b")
    token = devkeys.token(tmp_path / "a", subject="r1", roles=["ops"], departments=[])
    verifier = TokenVerifier(AuthSettings(public_key_file=str(tmp_path / "b" / devkeys.PUBLIC_KEY)))
    with pytest.raises(Unauthorized):
        await verifier.verify(token)
