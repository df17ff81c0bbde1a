"""What the deployment tests share: the files under deploy/, loaded, and the settings they must name."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from services.ingest.config import IngestSettings
from services.metrics.config import MetricsSettings
from services.policy.config import PolicySettings
from services.routing.config import RoutingSettings
from shared.config import AuthSettings, KafkaSettings, LogSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

# Each service, its settings class and its default HTTP port (deploy/ must agree with the code).
SERVICES: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "policy": PolicySettings,
    "routing": RoutingSettings,
    "metrics": MetricsSettings,
}
PLATFORM_SETTINGS: tuple[type[BaseSettings], ...] = (KafkaSettings, AuthSettings, LogSettings)
NESTED = {"kafka", "auth", "log"}
# The migrations CLI (shared/db/migrations.py) reads these instead of a service's settings.
MIGRATION_ENV = {"DATABASE_URL", "DATABASE_SCHEMA"}
SECRET_LOOKING = re.compile(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|PRIVATE")


def env_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (as docs/configuration.md lists them)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {
        field.alias or f"{prefix}{name}".upper()
        for name, field in cls.model_fields.items()
        if name not in NESTED
    }


@cache
def platform_names() -> frozenset[str]:
    return frozenset(name for cls in PLATFORM_SETTINGS for name in env_names(cls))


def service_names(service: str) -> frozenset[str]:
    """Every variable the process ``python -m services.<service>`` reads."""
    return platform_names() | env_names(SERVICES[service])


def all_setting_names() -> frozenset[str]:
    return frozenset().union(*(service_names(s) for s in SERVICES))


def default_port(service: str) -> int:
    port = SERVICES[service].model_fields["port"].default
    assert isinstance(port, int)
    return port


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


@cache
def k8s_documents() -> tuple[tuple[str, dict[str, Any]], ...]:
    """Every resource in deploy/k8s, with the name of its file."""
    return tuple(
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in load_yaml_documents(path)
    )


def k8s_resources(kind: str, *, examples: bool = False) -> list[dict[str, Any]]:
    return [
        doc
        for name, doc in k8s_documents()
        if doc["kind"] == kind and (examples or not name.endswith(".example.yaml"))
    ]


def load_script(path: Path) -> ModuleType:
    """Import a script that is not in a package (deploy/devkeys.py)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_runnable_command(argv: list[str]) -> None:
    """``python -m MODULE ...`` must name a module of this repository that can be run that way."""
    assert argv[:2] == ["python", "-m"], argv
    module = argv[2]
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"no module {module}"
    if spec.submodule_search_locations is not None:  # a package: needs __main__.py
        assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{module} has no __main__"
    if module == "shared.db.migrations":
        directory, action = argv[3], argv[4]
        assert (ROOT / directory / "env.py").is_file(), directory
        assert (ROOT / directory / "versions").is_dir(), directory
        assert action in {"upgrade", "check", "current"}, action
        source = (ROOT / "shared" / "db" / "migrations.py").read_text()
        for name in MIGRATION_ENV:
            assert f'os.environ.get("{name}"' in source, f"the migrations CLI no longer reads {name}"
