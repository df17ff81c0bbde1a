"""deploy/: the Grafana dashboard and the Prometheus scrape config match what the services really expose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import services.metrics.prometheus
import shared.observability  # noqa: F401 - registers the metrics every service exposes
from services.ingest.config import IngestSettings
from services.metrics.config import MetricsSettings
from services.policy.config import PolicySettings
from services.routing.config import RoutingSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "switchboard.json"


def exposed_series() -> set[str]:
    """Every series name the registry can expose (counters end _total; histograms _bucket, _count, _sum)."""
    assert services.metrics.prometheus.TIME_TO_ASSIGN  # imported for its registrations
    names: set[str] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("switchboard_"):
            continue
        if family.type == "counter":
            names |= {f"{family.name}_total"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum")}
        else:
            names.add(family.name)
    return names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_every_metric_in_the_dashboard_is_exposed_by_the_code():
    used = {name for expr in dashboard_exprs() for name in re.findall(r"\bswitchboard_[a-z0-9_]+", expr)}
    assert used, "no metric found in the dashboard"
    assert used <= exposed_series(), used - exposed_series()
    # and the dashboard covers the four subjects it promises
    for subject in (
        "time_to_first_response",
        "backlog_waiting",
        "consumer_lag",
        "dead_letters",
        "http_request",
    ):
        assert any(subject in n for n in used), subject


def test_dashboard_is_grafana_json_with_unique_panel_ids():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"]
    assert dashboard["title"]
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]


def test_prometheus_scrapes_every_service_on_its_default_port():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = {c["labels"]["service"]: c["targets"][0] for c in job["static_configs"]}
    ports = {
        "ingest": IngestSettings().port,
        "policy": PolicySettings().port,
        "routing": RoutingSettings().port,
        "metrics": MetricsSettings().port,
    }
    assert {name: target.rsplit(":", 1)[0] for name, target in targets.items()} == {n: n for n in ports}
    assert {name: int(target.rsplit(":", 1)[1]) for name, target in targets.items()} == ports
