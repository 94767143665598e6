"""What operators get in deploy/: the Prometheus alert rules and the Grafana dashboard
parse, and every metric they query is one that `/metrics` really exposes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "alur-dashboard.json"

# The series names each family type puts on the wire (prometheus-client's text format).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects; fails on a selector without one."""
    names: set[str] = set()
    unnamed: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name is None:
                unnamed.append(str(node))
            else:
                names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    assert not unnamed, f"selectors without a metric name in {expr!r}: {unnamed}"
    return names


@pytest.fixture
async def exposed(client: httpx.AsyncClient) -> set[str]:
    # A request first, so the HTTP families have samples as well as their descriptions.
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    names: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def test_metrics_expose_the_documented_families(exposed: set[str]) -> None:
    expected = {
        "alur_http_requests_total",
        "alur_http_request_duration_seconds_bucket",
        "alur_instances",
        "alur_tasks_open",
        "alur_tasks_overdue",
        "alur_tasks_escalated",
        "alur_outbox_lag_seconds",
        "alur_outbox_unpublished",
        "alur_webhook_deliveries",
        "alur_monitors",
        "alur_monitor_certificate_days_left",
        "alur_backup_check_last_success_timestamp_seconds",
        "alur_backup_check_working_days_missed",
        "alur_worker_jobs_total",
        "alur_worker_job_duration_seconds_bucket",
        "alur_worker_heartbeat_age_seconds",
        "alur_queue_depth",
    }
    assert expected <= exposed, expected - exposed


def _alert_rules() -> list[dict[str, Any]]:
    document = YAML(typ="safe").load(ALERTS.read_text())
    assert set(document) == {"groups"}
    rules = []
    group_names = [group["name"] for group in document["groups"]]
    assert len(group_names) == len(set(group_names)), "group names must be unique"
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"}
        assert group["rules"], group["name"]
        rules.extend(group["rules"])
    return rules


def test_alert_rules_are_valid(exposed: set[str]) -> None:
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= exposed, f"{rule['alert']} uses unknown metrics: {used - exposed}"


def test_alerts_cover_what_operators_asked_for() -> None:
    covered = {name for rule in _alert_rules() for name in metric_names(rule["expr"])}
    assert {
        "alur_tasks_overdue",
        "alur_backup_check_last_ok",
        "alur_backup_check_working_days_missed",
        "alur_monitors",
        "alur_monitor_certificate_days_left",
        "alur_webhook_deliveries",
        "alur_worker_heartbeat_age_seconds",
        "alur_outbox_lag_seconds",
    } <= covered


def test_dashboard_is_valid(exposed: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    panels = dashboard["panels"]
    assert [p["id"] for p in panels] == sorted({p["id"] for p in panels})
    queried: set[str] = set()
    for panel in panels:
        assert {"id", "type", "title", "gridPos"} <= set(panel)
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = metric_names(target["expr"])
            assert used <= exposed, f"{panel['title']} uses unknown metrics: {used - exposed}"
            queried |= used
    assert len(queried) >= 15
