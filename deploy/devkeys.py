"""Secrets and tokens for the Compose stack (deploy/compose.yaml); never for production.

    python deploy/devkeys.py init                     # make deploy/secrets/ (once; existing files are kept)
    python deploy/devkeys.py token --role agency_system [--dept transport] [--sub someone]

``init`` writes random database passwords, the services' database URLs, the author pseudonym key, the
Grafana admin password and an Ed25519 key pair: the services verify tokens with the public key
(``AUTH_PUBLIC_KEY_FILE``), and ``token`` signs with the private one, which never leaves this directory.
Run it with the project's interpreter (``.venv/bin/python``): it needs PyJWT and cryptography.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Run as a script (`python deploy/devkeys.py`): make the repository's kit importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from shared.auth import sign_token

SERVICES = ("ingest", "policy", "routing", "metrics")
DEFAULT_DIR = Path(__file__).resolve().parent / "secrets"
PRIVATE_KEY = "jwt-private-key.pem"
PUBLIC_KEY = "jwt-public-key.pem"
ROLES = ("agency_system", "responder", "supervisor", "admin", "ops")


def database_url(service: str, password: str) -> str:
    """The URL a service and its migration job use; role and database are made by deploy/postgres/init.sh."""
    return f"postgresql+asyncpg://{service}:{password}@postgres:5432/switchboard_{service}"


def _write(path: Path, content: str | bytes) -> None:
    if path.exists():
        return
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(data)
    # Readable by the containers' users (Compose bind-mounts these files with the host's permissions).
    path.chmod(0o644)


def init(directory: Path) -> list[Path]:
    """Create every secret file the Compose stack mounts; keep those that already exist."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    _write(directory / "postgres_password", secrets.token_hex(24))
    for service in SERVICES:
        password_file = directory / f"{service}_db_password"
        _write(password_file, secrets.token_hex(24))
        password = password_file.read_text().strip()
        _write(directory / f"{service}_database_url", database_url(service, password))
    _write(directory / "author_ref_secret", secrets.token_urlsafe(48))
    _write(directory / "grafana_admin_password", secrets.token_urlsafe(18))
    if not (directory / PRIVATE_KEY).exists():
        key = Ed25519PrivateKey.generate()
        _write(
            directory / PRIVATE_KEY,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        (directory / PRIVATE_KEY).chmod(0o600)
        (directory / PUBLIC_KEY).unlink(missing_ok=True)
    private = serialization.load_pem_private_key((directory / PRIVATE_KEY).read_bytes(), password=None)
    _write(
        directory / PUBLIC_KEY,
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return sorted(directory.iterdir())


def token(
    directory: Path,
    *,
    subject: str,
    roles: list[str],
    departments: list[str],
    issuer: str = "switchboard",
    audience: str = "switchboard",
    ttl_seconds: int = 8 * 3600,
) -> str:
    """An EdDSA bearer token the Compose stack accepts (same claims as ``make token``)."""
    key = serialization.load_pem_private_key((directory / PRIVATE_KEY).read_bytes(), password=None)
    return sign_token(
        key=key,
        algorithm="EdDSA",
        subject=subject,
        roles=roles,
        departments=departments,
        issuer=issuer,
        audience=audience,
        ttl_seconds=ttl_seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the secret files live")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the secret files (existing ones are kept)")
    tok = sub.add_parser("token", help="print a bearer token signed with the private key")
    tok.add_argument("--role", action="append", required=True, choices=ROLES)
    tok.add_argument("--dept", action="append", default=[])
    tok.add_argument("--sub", default="compose-user")
    tok.add_argument("--ttl", type=int, default=8 * 3600)
    args = parser.parse_args()
    if args.command == "init":
        for path in init(args.dir):
            print(path)
    else:
        print(
            token(
                args.dir,
                subject=args.sub,
                roles=args.role,
                departments=[d for d in args.dept if d],
                ttl_seconds=args.ttl,
            )
        )


if __name__ == "__main__":
    main()
