"""deploy/compose.yaml: valid against the Compose specification, and wired the way the code needs it.

Nothing here starts a container (this machine has no container engine); the file is checked offline.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.support import (
    DEPLOY,
    MIGRATION_ENV,
    SERVICES,
    assert_runnable_command,
    compose,
    default_port,
    load_script,
    service_names,
)

MIGRATION_JOBS = {f"{s}-migrate": s for s in SERVICES}


def compose_schema() -> dict[str, Any]:
    # The Compose specification's JSON schema, as vendored by check-jsonschema (`vendor.compose-spec`).
    text = (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    schema = json.loads(text)
    assert isinstance(schema, dict)
    return schema


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def service(name: str) -> dict[str, Any]:
    svc = compose()["services"][name]
    assert isinstance(svc, dict)
    return svc


def secret_targets(svc: dict[str, Any]) -> dict[str, str]:
    """target name -> compose secret name."""
    out = {}
    for entry in svc.get("secrets", []):
        if isinstance(entry, str):
            out[entry] = entry
        else:
            out[entry.get("target", entry["source"])] = entry["source"]
    return out


class TestSpecification:
    def test_compose_file_is_valid_against_the_compose_specification(self) -> None:
        assert schema_errors(compose()) == []

    def test_the_schema_check_catches_a_misspelt_key(self) -> None:
        broken = json.loads(json.dumps(compose()))
        broken["services"]["ingest"]["depend_on"] = broken["services"]["ingest"].pop("depends_on")
        assert schema_errors(broken)

    def test_every_service_expected_is_there(self) -> None:
        expected = {"kafka", "postgres", "prometheus", "grafana", *SERVICES, *MIGRATION_JOBS}
        assert set(compose()["services"]) == expected


class TestKafka:
    def test_apache_kafka_4_in_kraft_mode(self) -> None:
        kafka = service("kafka")
        assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
        env = kafka["environment"]
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert not any("ZOOKEEPER" in name for name in env)
        assert env["CLUSTER_ID"]
        node = env["KAFKA_NODE_ID"]
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node}@kafka:")

    def test_listeners_are_consistent(self) -> None:
        env = service("kafka")["environment"]
        listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
        protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        assert set(listeners) <= set(protocols)
        assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
        assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
        assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
        # The services reach the broker through the address it advertises on the inter-broker listener.
        internal = advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
        for name in SERVICES:
            assert service(name)["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == internal
        assert internal.endswith(":" + listeners[env["KAFKA_INTER_BROKER_LISTENER_NAME"]].split(":")[-1])

    def test_single_node_internal_topics_fit_one_broker_and_nothing_is_auto_created(self) -> None:
        env = service("kafka")["environment"]
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert "healthcheck" in service("kafka")


class TestPostgres:
    def test_postgres_16_with_the_init_script_mounted(self) -> None:
        pg = service("postgres")
        assert pg["image"].split(":")[0] == "postgres"
        assert pg["image"].split(":")[1].startswith("16")
        mounts = [v.split(":") for v in pg["volumes"] if v.startswith("./")]
        init = [m for m in mounts if m[1].startswith("/docker-entrypoint-initdb.d/")]
        assert len(init) == 1
        script = DEPLOY / init[0][0]
        assert script.is_file()
        assert script.stat().st_mode & 0o111, "the init script must be executable"
        assert "POSTGRES_PASSWORD_FILE" in pg["environment"]
        assert "POSTGRES_PASSWORD" not in pg["environment"]

    def test_init_script_is_valid_bash_and_makes_one_database_per_service(self) -> None:
        script = DEPLOY / "postgres" / "init.sh"
        subprocess.run(["bash", "-n", str(script)], check=True)  # noqa: S603, S607
        text = script.read_text()
        assert "for service in ingest policy routing metrics" in text
        assert 'database="switchboard_${service}"' in text
        for name in SERVICES:
            assert f"{name}_db_password" in secret_targets(service("postgres"))

    def test_the_database_urls_name_the_databases_the_init_script_makes(self) -> None:
        devkeys = load_script(DEPLOY / "devkeys.py")
        for name in SERVICES:
            url = devkeys.database_url(name, "pw")
            assert url == f"postgresql+asyncpg://{name}:pw@postgres:5432/switchboard_{name}"


class TestMigrationJobs:
    @pytest.mark.parametrize(("job", "name"), MIGRATION_JOBS.items())
    def test_one_shot_job_runs_the_services_migrations(self, job: str, name: str) -> None:
        svc = service(job)
        assert svc["command"] == [
            "python",
            "-m",
            "shared.db.migrations",
            f"services/{name}/migrations",
            "upgrade",
        ]
        assert_runnable_command(svc["command"])
        assert svc["restart"] == "no"
        assert svc["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert secret_targets(svc) == {"DATABASE_URL": f"{name}_database_url"}
        assert set(svc.get("environment", {})) <= MIGRATION_ENV


class TestServices:
    @pytest.mark.parametrize("name", SERVICES)
    def test_command_port_and_dependencies(self, name: str) -> None:
        svc = service(name)
        assert svc["command"] == ["python", "-m", f"services.{name}"]
        assert_runnable_command(svc["command"])
        port = default_port(name)
        assert svc["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert svc["depends_on"][f"{name}-migrate"] == {"condition": "service_completed_successfully"}
        assert svc["depends_on"]["kafka"] == {"condition": "service_healthy"}
        assert svc["image"] == service(f"{name}-migrate")["image"]

    @pytest.mark.parametrize("name", SERVICES)
    def test_environment_for_apache_kafka_and_a_migration_job(self, name: str) -> None:
        env = service(name)["environment"]
        prefix = name.upper()
        assert env["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        assert env["KAFKA_FETCH_MAX_WAIT_MS"] == "500"
        assert env[f"{prefix}_MIGRATE_ON_START"] == "false"
        assert env[f"{prefix}_HOST"] == "0.0.0.0"  # noqa: S104 - inside a container
        assert env[f"{prefix}_PORT"] == str(default_port(name))
        assert "AUTH_DEV_SECRET" not in env

    @pytest.mark.parametrize("name", SERVICES)
    def test_secrets_come_from_files_not_from_the_compose_file(self, name: str) -> None:
        svc = service(name)
        targets = secret_targets(svc)
        assert targets[f"{name.upper()}_DATABASE_URL"] == f"{name}_database_url"
        if name == "ingest":
            assert targets["INGEST_AUTHOR_REF_SECRET"] == "author_ref_secret"
        key_file = Path(svc["environment"]["AUTH_PUBLIC_KEY_FILE"])
        assert key_file.parent == Path("/run/secrets")
        assert key_file.name in targets
        for variable in svc["environment"]:
            assert not re.search(r"SECRET|PASSWORD|DATABASE_URL", variable), variable

    @pytest.mark.parametrize("name", SERVICES)
    def test_every_variable_set_is_a_real_setting_of_that_service(self, name: str) -> None:
        svc = service(name)
        variables = set(svc["environment"]) | {t for t in secret_targets(svc) if t.isupper()}
        assert variables - service_names(name) == set()

    @pytest.mark.parametrize("name", SERVICES)
    def test_the_settings_accept_the_values(self, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        svc = service(name)
        for variable, value in svc["environment"].items():
            monkeypatch.setenv(variable, str(value))
        for target in secret_targets(svc):
            if target.isupper():
                monkeypatch.setenv(target, "postgresql+asyncpg://u:p@postgres/db")
        settings: Any = SERVICES[name]()
        assert settings.migrate_on_start is False
        assert settings.kafka.enable_idempotence is True
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert settings.port == default_port(name)
        assert settings.auth.public_key_file == "/run/secrets/jwt-public-key.pem"

    @pytest.mark.parametrize("name", SERVICES)
    def test_healthcheck_asks_readyz_on_the_service_port(self, name: str) -> None:
        test = service(name)["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        assert f"http://127.0.0.1:{default_port(name)}/readyz" in test[3]


@pytest.fixture
def readyz_server() -> Iterator[tuple[int, list[int]]]:
    """A local HTTP server whose /readyz answers the status code last put in the list."""
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0] if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], status
    server.shutdown()
    server.server_close()


def test_the_healthcheck_command_fails_when_readyz_answers_503(readyz_server: tuple[int, list[int]]) -> None:
    port, status = readyz_server
    code = service("ingest")["healthcheck"]["test"][3].replace(":8001/", f":{port}/")

    def run() -> int:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=10).returncode  # noqa: S603

    assert run() == 0
    status[0] = 503
    assert run() != 0


class TestSecretsAndObservability:
    def test_devkeys_init_makes_every_secret_file_compose_mounts(self, tmp_path: Path) -> None:
        devkeys = load_script(DEPLOY / "devkeys.py")
        made = {p.name for p in devkeys.init(tmp_path)}
        for name, secret in compose()["secrets"].items():
            path = Path(secret["file"])
            assert path.parent == Path("secrets"), name
            assert path.name in made, name
        assert (DEPLOY / ".gitignore").read_text().count("/secrets/") == 1

    def test_every_secret_used_is_declared_and_every_declared_one_used(self) -> None:
        used = {src for svc in compose()["services"].values() for src in secret_targets(svc).values()}
        assert used == set(compose()["secrets"])

    def test_prometheus_and_grafana_mount_their_config_from_deploy(self) -> None:
        prom = service("prometheus")["volumes"]
        assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom
        grafana = service("grafana")["volumes"]
        assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
        assert any(v.startswith("./grafana/dashboards:") for v in grafana)
        assert "GF_SECURITY_ADMIN_PASSWORD" not in service("grafana")["environment"]

    def test_no_development_token_secret_anywhere(self) -> None:
        assert "AUTH_DEV_SECRET" not in (DEPLOY / "compose.yaml").read_text()
