"""deploy/Dockerfile, its entry point and .dockerignore, checked without building (no container engine)."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import dockerfile
import pytest

from tests.deploy.support import DEPLOY, ROOT, SERVICES, all_setting_names, assert_runnable_command

DOCKERFILE = DEPLOY / "Dockerfile"
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"


def instructions() -> tuple[dockerfile.Command, ...]:
    """The Dockerfile as BuildKit's own parser reads it (the `dockerfile` package wraps it)."""
    return dockerfile.parse_file(str(DOCKERFILE))


def final_stage() -> list[dockerfile.Command]:
    stages: list[list[dockerfile.Command]] = []
    for command in instructions():
        if command.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
    return stages[-1]


def of(stage: Iterable[dockerfile.Command], cmd: str) -> list[dockerfile.Command]:
    return [c for c in stage if c.cmd == cmd]


def env_of(stage: list[dockerfile.Command]) -> dict[str, str]:
    env: dict[str, str] = {}
    for command in of(stage, "ENV"):
        pairs = command.value
        env.update(zip(pairs[::2], pairs[1::2], strict=True))
    return env


class TestDockerfile:
    def test_parses_with_the_official_parser(self) -> None:
        assert [c.cmd for c in instructions()].count("FROM") == 2

    def test_based_on_python_311_slim(self) -> None:
        assert ("PYTHON_IMAGE=python:3.11-slim",) in [c.value for c in of(instructions(), "ARG")]
        assert all(c.value[0] == "${PYTHON_IMAGE}" for c in of(instructions(), "FROM"))

    def test_installs_uv_from_pypi_and_the_locked_runtime_dependencies_only(self) -> None:
        runs = " ".join(c.value[0] for c in of(instructions(), "RUN"))
        assert re.search(r"pip install [^&]*\buv==", runs)
        assert "uv sync --frozen --no-dev" in runs
        assert ("pyproject.toml", "uv.lock", "./") in [c.value for c in of(instructions(), "COPY")]

    def test_runs_as_a_non_root_user_without_a_healthcheck(self) -> None:
        users = of(final_stage(), "USER")
        assert users, "no USER in the final stage"
        uid = users[-1].value[0].split(":")[0]
        assert uid.isdigit(), "use a numeric uid: runAsNonRoot can check only that"
        assert int(uid) != 0
        assert not of(instructions(), "HEALTHCHECK")

    def test_environment(self) -> None:
        env = env_of(final_stage())
        assert env["PYTHONUNBUFFERED"] == "1"
        assert env["PYTHONPATH"] == "/app"
        assert env["PATH"].startswith("/app/.venv/bin:")
        service_env = {k for k in env if not k.startswith("PYTHON") and k not in {"PATH", "VIRTUAL_ENV"}}
        assert service_env - all_setting_names() == set()

    def test_everything_copied_exists_and_is_not_dockerignored(self) -> None:
        for command in of(final_stage(), "COPY"):
            if any(flag.startswith("--from") for flag in command.flags):
                continue
            *sources, _target = command.value
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not dockerignored(source), f"{source} is excluded by .dockerignore"

    def test_the_entry_point_is_the_script_in_deploy(self) -> None:
        stage = final_stage()
        copies = [c.value for c in of(stage, "COPY")]
        assert ("deploy/docker-entrypoint.sh", "/usr/local/bin/switchboard-entrypoint") in copies
        (entrypoint,) = of(stage, "ENTRYPOINT")
        assert entrypoint.json
        assert entrypoint.value == ("switchboard-entrypoint",)


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins, ``!`` re-includes, a folder match covers its files."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", "")) for p in prefixes
        ):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    for path in (
        ".venv/bin/python",
        ".git/config",
        "var/ingest.db",
        "deploy/secrets/postgres_password",
        ".env",
    ):
        assert dockerignored(path), path
    for path in ("pyproject.toml", "uv.lock", "shared/config.py", "services/ingest/__main__.py"):
        assert not dockerignored(path), path


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_a_runnable_module(name: str) -> None:
    assert_runnable_command(["python", "-m", f"services.{name}"])
    assert_runnable_command(
        ["python", "-m", "shared.db.migrations", f"services/{name}/migrations", "upgrade"]
    )


class TestEntryPoint:
    def run(self, tmp_path: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own script
            ["sh", str(ENTRYPOINT), *command],  # noqa: S607 - POSIX sh, as in the image
            env={"PATH": os.environ["PATH"], "SWITCHBOARD_SECRETS_DIR": str(tmp_path), **env},
            capture_output=True,
            text=True,
            timeout=10,
        )

    def test_is_posix_sh_and_executable(self) -> None:
        subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)  # noqa: S603, S607
        assert ENTRYPOINT.stat().st_mode & 0o111

    def test_exports_secret_files_named_like_variables(self, tmp_path: Path) -> None:
        (tmp_path / "INGEST_AUTHOR_REF_SECRET").write_text("s3cret value\n")
        (tmp_path / "jwt-public-key.pem").write_text("not a variable")
        result = self.run(tmp_path, "env")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert "INGEST_AUTHOR_REF_SECRET=s3cret value" in lines
        assert not any("not a variable" in line for line in lines)

    def test_a_variable_already_set_wins_over_the_file(self, tmp_path: Path) -> None:
        (tmp_path / "LOG_LEVEL").write_text("DEBUG")
        result = self.run(tmp_path, "env", LOG_LEVEL="WARNING")
        assert "LOG_LEVEL=WARNING" in result.stdout.splitlines()

    def test_without_a_command_it_prints_usage(self, tmp_path: Path) -> None:
        result = self.run(tmp_path)
        assert result.returncode == 64
        assert "python -m services.ingest" in result.stderr

    def test_execs_the_command_so_it_gets_the_signals(self) -> None:
        assert ENTRYPOINT.read_text().rstrip().endswith('exec "$@"')
