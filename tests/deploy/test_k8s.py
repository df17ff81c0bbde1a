"""deploy/k8s: valid Kubernetes resources (checked offline against the API schemas that kubernetes-validate
ships), wired the way the services need: probes, resources, security, secrets, migrations, topics.

No cluster is reachable from here; Strimzi's KafkaTopic (a custom resource) is checked structurally.
"""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.routing.config import RoutingSettings
from shared.contracts.topics import ALL_TOPICS, dead_letter_topic
from tests.deploy.support import (
    K8S,
    MIGRATION_ENV,
    SECRET_LOOKING,
    SERVICES,
    all_setting_names,
    assert_runnable_command,
    default_port,
    k8s_documents,
    k8s_resources,
    load_yaml_documents,
    service_names,
)

# The oldest Kubernetes minor release still commonly run, and the newest whose schemas are shipped.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"KafkaTopic"}
SECRET_NAME = "switchboard-secrets"


def by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in k8s_resources(kind)}


def pod_spec(name: str) -> dict[str, Any]:
    spec = by_name("Deployment")[name]["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def main_container(name: str) -> dict[str, Any]:
    containers = pod_spec(name)["containers"]
    assert len(containers) == 1
    container = containers[0]
    assert isinstance(container, dict)
    return container


def env_map(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def config_map() -> dict[str, str]:
    data = by_name("ConfigMap")["switchboard-config"]["data"]
    assert isinstance(data, dict)
    return data


def example_secret_keys() -> set[str]:
    (secret,) = k8s_resources("Secret", examples=True)
    return set(secret["stringData"])


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def consumer_groups() -> dict[str, list[str]]:
    from services.metrics import handlers as metrics
    from services.policy import handlers as policy
    from services.routing import handlers as routing

    return {
        "policy.screening": [str(t) for t in policy.router.topics],
        "routing.assignment": [str(t) for t in routing.build_router(RoutingSettings()).topics],
        "metrics.timeline": [str(t) for t in metrics.router.topics],
    }


class TestFiles:
    def test_every_manifest_is_yaml_with_kind_and_api_version(self) -> None:
        assert k8s_documents()
        for filename, doc in k8s_documents():
            assert {"apiVersion", "kind", "metadata"} <= set(doc), filename

    def test_kustomization_lists_every_manifest_but_the_examples(self) -> None:
        (kustomization,) = load_yaml_documents(K8S / "kustomization.yaml")
        files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
        examples = {f for f in files if f.endswith(".example.yaml")}
        assert examples == {"secret.example.yaml"}
        assert set(kustomization["resources"]) == files - examples
        assert len(kustomization["resources"]) == len(set(kustomization["resources"]))
        assert [i["name"] for i in kustomization["images"]] == ["switchboard"]

    @pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
    def test_every_builtin_resource_is_valid_against_the_kubernetes_schema(self, version: str) -> None:
        for filename, doc in k8s_documents():
            if doc["kind"] in CUSTOM_KINDS:
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{filename} {doc['kind']}/{doc['metadata']['name']}: {exc.message}")

    def test_the_schema_check_catches_a_misspelt_field(self) -> None:
        doc = yaml.safe_load(yaml.safe_dump(by_name("Deployment")["ingest"]))
        doc["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[0], strict=True)

    def test_services_live_in_the_switchboard_namespace(self) -> None:
        assert set(by_name("Namespace")) == {"switchboard"}
        for _, doc in k8s_documents():
            if doc["kind"] not in CUSTOM_KINDS | {"Namespace"}:
                assert doc["metadata"]["namespace"] == "switchboard", doc["metadata"]["name"]


class TestDeployments:
    def test_one_deployment_per_service(self) -> None:
        assert set(by_name("Deployment")) == set(SERVICES)

    @pytest.mark.parametrize("name", SERVICES)
    def test_runs_the_service_module(self, name: str) -> None:
        container = main_container(name)
        assert container["image"] == "switchboard"
        assert "command" not in container, "keep the image's entry point; choose the service with args"
        assert container["args"] == ["python", "-m", f"services.{name}"]
        assert_runnable_command(container["args"])

    @pytest.mark.parametrize("name", SERVICES)
    def test_readiness_is_readyz_and_liveness_is_healthz_on_the_service_port(self, name: str) -> None:
        container = main_container(name)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": default_port(name)}
        env = env_map(container)
        assert env[f"{name.upper()}_PORT"]["value"] == str(default_port(name))
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path
            port = get["port"]
            assert ports.get(port, port) == default_port(name)
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"

    @pytest.mark.parametrize("name", SERVICES)
    def test_every_container_has_requests_and_limits(self, name: str) -> None:
        spec = pod_spec(name)
        for container in spec["containers"] + spec.get("initContainers", []):
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), (container["name"], bound)

    @pytest.mark.parametrize("name", SERVICES)
    def test_runs_non_root_with_a_read_only_root_filesystem(self, name: str) -> None:
        spec = pod_spec(name)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"] + spec.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"]

    @pytest.mark.parametrize("name", SERVICES)
    def test_migrations_are_left_to_the_job(self, name: str) -> None:
        env = env_map(main_container(name))
        assert env[f"{name.upper()}_MIGRATE_ON_START"]["value"] == "false"
        (init,) = pod_spec(name)["initContainers"]
        assert init["args"] == [
            "python",
            "-m",
            "shared.db.migrations",
            f"services/{name}/migrations",
            "check",
        ]
        assert_runnable_command(init["args"])
        assert init["env"][0]["valueFrom"] == env[f"{name.upper()}_DATABASE_URL"]["valueFrom"]

    @pytest.mark.parametrize("name", SERVICES)
    def test_configuration_from_the_configmap_and_secrets_by_reference(self, name: str) -> None:
        container = main_container(name)
        assert container["envFrom"] == [{"configMapRef": {"name": "switchboard-config"}}]
        env = env_map(container)
        for variable, item in env.items():
            if SECRET_LOOKING.search(variable):
                ref = item["valueFrom"]["secretKeyRef"]
                assert ref["name"] == SECRET_NAME
                assert ref["key"] in example_secret_keys()
        assert "secretKeyRef" in env[f"{name.upper()}_DATABASE_URL"]["valueFrom"]
        if name == "ingest":
            assert "secretKeyRef" in env["INGEST_AUTHOR_REF_SECRET"]["valueFrom"]

    @pytest.mark.parametrize("name", SERVICES)
    def test_every_variable_set_is_a_real_setting_of_that_service(self, name: str) -> None:
        assert set(env_map(main_container(name))) - service_names(name) == set()
        # The ConfigMap is shared: a setting of any service may be in it, but nothing else.
        assert set(config_map()) - all_setting_names() == set()
        for init in pod_spec(name).get("initContainers", []):
            assert set(env_map(init)) <= MIGRATION_ENV

    @pytest.mark.parametrize("name", SERVICES)
    def test_the_settings_accept_the_values(self, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        for variable, value in config_map().items():
            monkeypatch.setenv(variable, value)
        for variable, item in env_map(main_container(name)).items():
            monkeypatch.setenv(variable, item.get("value", "from-a-secret"))
        settings: Any = SERVICES[name]()
        assert settings.migrate_on_start is False
        assert settings.host == "0.0.0.0"  # noqa: S104 - inside a pod
        assert settings.kafka.enable_idempotence is True
        assert settings.kafka.fetch_max_wait_ms == 500
        assert settings.kafka.create_topics is False
        assert settings.auth.jwks_url or settings.auth.public_key_file
        assert settings.auth.dev_secret is None

    @pytest.mark.parametrize("name", SERVICES)
    def test_service_and_disruption_budget_select_the_pods(self, name: str) -> None:
        deployment = by_name("Deployment")[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert matches(deployment["spec"]["selector"]["matchLabels"], labels)
        service = by_name("Service")[name]
        assert matches(service["spec"]["selector"], labels)
        (port,) = service["spec"]["ports"]
        assert port["port"] == default_port(name)
        assert port["targetPort"] in {"http", default_port(name)}
        pdb = by_name("PodDisruptionBudget")[name]
        assert matches(pdb["spec"]["selector"]["matchLabels"], labels)
        assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]

    def test_migration_pods_are_not_behind_a_service(self) -> None:
        for job in by_name("Job").values():
            labels = job["spec"]["template"]["metadata"]["labels"]
            for service in by_name("Service").values():
                assert not matches(service["spec"]["selector"], labels)


class TestConfigAndSecrets:
    def test_configmap_holds_no_secrets_and_no_development_key(self) -> None:
        for variable in config_map():
            assert not SECRET_LOOKING.search(variable), variable
        for path in K8S.glob("*.yaml"):
            assert "AUTH_DEV_SECRET" not in path.read_text(), path.name

    def test_configmap_is_set_for_apache_kafka(self) -> None:
        data = config_map()
        assert data["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        assert data["KAFKA_FETCH_MAX_WAIT_MS"] == "500"
        assert data["KAFKA_CREATE_TOPICS"] == "false"

    def test_no_secret_value_is_written_into_a_manifest(self) -> None:
        for _, doc in k8s_documents():
            for container in _containers(doc):
                for item in container.get("env", []):
                    if SECRET_LOOKING.search(item["name"]):
                        assert "value" not in item, item["name"]

    def test_the_example_secret_is_only_placeholders_and_is_never_applied(self) -> None:
        (secret,) = k8s_resources("Secret", examples=True)
        assert secret["metadata"]["name"] == SECRET_NAME
        for key, value in secret["stringData"].items():
            assert "REPLACE_ME" in value, key
        assert not k8s_resources("Secret")  # nothing but the example

    def test_every_secret_key_referenced_is_in_the_example(self) -> None:
        referenced = set()
        for _, doc in k8s_documents():
            for container in _containers(doc):
                for item in container.get("env", []):
                    ref = item.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["name"] == SECRET_NAME
                        referenced.add(ref["key"])
        assert referenced == example_secret_keys()


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] in {"Deployment", "Job"}:
        spec = doc["spec"]["template"]["spec"]
        return list(spec["containers"]) + list(spec.get("initContainers", []))
    return []


class TestMigrationJobs:
    def test_one_job_per_service(self) -> None:
        assert set(by_name("Job")) == {f"{name}-migrate" for name in SERVICES}

    @pytest.mark.parametrize("name", SERVICES)
    def test_job_upgrades_the_services_own_database(self, name: str) -> None:
        job = by_name("Job")[f"{name}-migrate"]
        spec = job["spec"]["template"]["spec"]
        assert spec["restartPolicy"] in {"Never", "OnFailure"}
        (container,) = spec["containers"]
        assert container["args"] == [
            "python",
            "-m",
            "shared.db.migrations",
            f"services/{name}/migrations",
            "upgrade",
        ]
        assert_runnable_command(container["args"])
        env = env_map(container)
        assert set(env) <= MIGRATION_ENV
        service_url = env_map(main_container(name))[f"{name.upper()}_DATABASE_URL"]
        assert env["DATABASE_URL"]["valueFrom"] == service_url["valueFrom"]
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert job["spec"]["backoffLimit"] >= 1


class TestTopics:
    def expected(self) -> set[str]:
        dead_letters = {dead_letter_topic(t, g) for g, topics in consumer_groups().items() for t in topics}
        return set(ALL_TOPICS) | dead_letters

    def test_every_topic_and_dead_letter_topic_of_the_code_is_declared(self) -> None:
        declared = {doc["spec"]["topicName"] for doc in k8s_resources("KafkaTopic")}
        assert declared == self.expected()
        assert len(k8s_resources("KafkaTopic")) == len(declared)

    def test_the_consumer_groups_are_the_documented_ones(self) -> None:
        assert set(consumer_groups()) == {"policy.screening", "routing.assignment", "metrics.timeline"}

    def test_partitions_replication_and_min_insync_replicas(self) -> None:
        for doc in k8s_resources("KafkaTopic"):
            assert doc["apiVersion"] == "kafka.strimzi.io/v1beta2"
            assert doc["metadata"]["labels"]["strimzi.io/cluster"]
            spec = doc["spec"]
            assert spec["partitions"] == int(config_map()["KAFKA_TOPIC_PARTITIONS"]) == 6
            assert spec["replicas"] == int(config_map()["KAFKA_TOPIC_REPLICATION_FACTOR"]) == 3
            assert int(spec["config"]["min.insync.replicas"]) == 2
            assert set(spec) <= {"topicName", "partitions", "replicas", "config"}

    def test_resource_names_are_valid_kubernetes_names(self) -> None:
        dns_subdomain = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        for doc in k8s_resources("KafkaTopic"):
            name = doc["metadata"]["name"]
            assert dns_subdomain.match(name), name
            assert len(name) <= 253, name
            assert name == doc["spec"]["topicName"]
