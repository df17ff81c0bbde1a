"""Prometheus and Grafana configuration (deploy/prometheus, deploy/grafana, written separately) must fit
the Compose stack: scrape targets name the services' real ports, dashboards are provisioned from the path
Compose mounts them at. Skipped while those files do not exist yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY, SERVICES, compose, default_port

PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"


def mounts(service: str) -> dict[str, str]:
    """container path -> host path (relative to deploy/) of a service's bind mounts."""
    out = {}
    for volume in compose()["services"][service]["volumes"]:
        host, container, *_ = volume.split(":")
        if host.startswith("./"):
            out[container] = host
    return out


def static_targets(config: dict[str, Any]) -> list[str]:
    return [
        target
        for job in config.get("scrape_configs") or []
        for static in job.get("static_configs") or []
        for target in static.get("targets") or []
    ]


@pytest.mark.skipif(not PROMETHEUS.exists(), reason="deploy/prometheus/prometheus.yml not written yet")
def test_prometheus_scrapes_the_services_on_their_ports() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    ports = {name: default_port(name) for name in SERVICES}
    for target in static_targets(config):
        host, _, port = target.rpartition(":")
        if host in ports:
            assert int(port) == ports[host], target


@pytest.mark.skipif(not GRAFANA_PROVISIONING.exists(), reason="deploy/grafana/provisioning not written yet")
def test_grafana_dashboards_are_read_from_where_compose_mounts_them() -> None:
    mounted = mounts("grafana")
    assert mounted["/etc/grafana/provisioning"] == "./grafana/provisioning"
    for provider_file in sorted((GRAFANA_PROVISIONING / "dashboards").glob("*.y*ml")):
        providers = (yaml.safe_load(provider_file.read_text()) or {}).get("providers") or []
        for provider in providers:
            path = Path((provider.get("options") or {}).get("path", ""))
            assert any(path == Path(c) or Path(c) in path.parents for c in mounted), (
                f"{provider_file.name}: dashboards path {path} is not mounted in compose.yaml"
            )
