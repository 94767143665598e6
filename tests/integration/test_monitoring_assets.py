"""What operators get in deploy/: the Prometheus alert rules and the Grafana dashboard
parse, every metric they query is one that `/metrics` really exposes, they group by
labels those metrics have, and the rules pass their promtool unit tests."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from services.api.metrics.collector import _Families, database_families, worker_families
from services.core.telemetry.repository import BackupChecks, Certificate, Snapshot, TaskLoad
from services.core.telemetry.worker_stats import JobStats

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "alur-dashboard.json"
PROMTOOL = shutil.which("promtool")
# Labels a Prometheus scrape sets itself: a metric's own would be renamed `exported_…`.
TARGET_LABELS = {"job", "instance"}

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


@pytest.fixture
async def labels_of(client: httpx.AsyncClient) -> dict[str, set[str]]:
    """Each series name with the labels it carries: the HTTP families as scraped, the
    database and worker families as the collector builds them from one row of each."""
    await client.get("/healthz")
    scraped = (await client.get("/metrics")).text
    now = datetime.now(UTC)
    data = Snapshot(
        instances=[("rkakl", "active", 1)],
        tasks=[TaskLoad("rkakl", "staf_ti", 1, 1)],
        escalations=[(1, 1)],
        outbox_unpublished=0,
        outbox_lag_seconds=0.0,
        monitors=[("pn-tais", "up", 1)],
        certificates=[Certificate("m1", "site", "pn-tais", 30.0)],
        latencies=[("m1", "site", "pn-tais", 0.2)],
        backups=[BackupChecks("pn-tais", now, now)],
        webhook_deliveries={"dead": 0},
        unstaffed=[("pn-tais", "kasubbag_ptip", 1)],
    )
    job = JobStats("deliver_webhook", {"success": 1}, [(math.inf, 1)], 0.1)
    registry = CollectorRegistry(auto_describe=False)
    families = [*database_families(data, {"pn-tais": 0}), *worker_families([job], [1.0], 0, 90)]
    registry.register(_Families(families))
    found: dict[str, set[str]] = {}
    for text in (scraped, generate_latest(registry).decode()):
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found.setdefault(sample.name, set()).update(sample.labels)
    return found


def _expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [rule["expr"] for rule in _alert_rules()] + [
        target["expr"] for panel in panels for target in panel.get("targets", [])
    ]


def test_no_metric_carries_a_label_the_scrape_sets(labels_of: dict[str, set[str]]) -> None:
    assert "alur_worker_jobs_total" in labels_of
    for name, labels in labels_of.items():
        assert not labels & TARGET_LABELS, f"{name} has {labels & TARGET_LABELS}"


def test_alerts_and_panels_group_by_labels_their_metrics_have(
    labels_of: dict[str, set[str]],
) -> None:
    grouped = 0
    for expr in _expressions():
        available = set().union(*(labels_of.get(name, set()) for name in metric_names(expr)))
        groupings: list[list[str]] = []

        def visit(node: Any, into: list[list[str]] = groupings) -> None:
            if not isinstance(node, promql_parser.AggregateExpr) or node.modifier is None:
                return
            if node.modifier.type == promql_parser.AggModifierType.By:
                into.append(list(node.modifier.labels))

        promql_parser.walk(promql_parser.parse(expr), visit)
        for labels in groupings:
            grouped += 1
            # A label no queried metric has would merge every series into one.
            assert set(labels) <= available, f"{expr!r} groups by {set(labels) - available}"
    assert grouped >= 15


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: prometheus)")
def test_alert_rules_pass_promtool() -> None:
    assert PROMTOOL is not None
    for args in (["check", "rules", ALERTS.name], ["test", "rules", ALERT_TESTS.name]):
        result = subprocess.run(
            [PROMTOOL, *args], cwd=ALERTS.parent, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


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
        "alur_notifications",
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
