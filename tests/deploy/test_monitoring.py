"""The alert rules and the Grafana dashboard (deploy/monitoring): promtool checks and unit-tests
the rules, a broken rule fails, every expression parses and names only metrics the services
export (services/common/metrics.py), and the PrometheusRule embeds exactly alerts.yaml.

promtool comes from PATH or is extracted from Debian's `prometheus` package into .run/tools by
deploy/k8s/validate.sh; where that is impossible these tests skip, except under CI (env `CI`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from services.common import metrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
VALIDATE = ROOT / "deploy" / "k8s" / "validate.sh"
TOOLS_MISSING = 3

pytestmark = pytest.mark.timeout(300)


def _load_generate() -> ModuleType:
    path = ROOT / "deploy" / "k8s" / "generate.py"
    spec = importlib.util.spec_from_file_location("verity_deploy_generate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load_generate()


@pytest.fixture(scope="module")
def promtool() -> Path:
    done = subprocess.run(
        [str(VALIDATE), "--tools", "--only", "monitoring"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == TOOLS_MISSING:
        message = f"promtool unavailable: {done.stderr.strip()[-500:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert done.returncode == 0, done.stderr
    found = re.search(r"^validate: promtool: (.+)$", done.stderr, re.MULTILINE)
    assert found, done.stderr
    return Path(found.group(1))


def run(*args: str | Path, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False
    )


def exported_samples() -> set[str]:
    """Sample names Prometheus sees from the services' own metrics."""
    names = set()
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        for family in value.describe():
            suffixes = {
                "counter": ("_total",),
                "gauge": ("",),
                "histogram": ("_bucket", "_count", "_sum"),
            }[family.type]
            names |= {family.name + s for s in suffixes}
    return names


def dashboard_exprs() -> list[str]:
    board: dict[str, Any] = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def alerts_text() -> str:
    return (MONITORING / "alerts.yaml").read_text()


def test_rules_pass_promtool_check_and_unit_tests(promtool: Path) -> None:
    checked = run(promtool, "check", "rules", "alerts.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", "alerts.test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_a_broken_rule_fails_promtool(promtool: Path, tmp_path: Path) -> None:
    broken = alerts_text().replace(
        "expr: max by (namespace, service) (verity_outbox_oldest_age_seconds) > 300",
        "expr: max by (namespace, service) (verity_outbox_oldest_age_seconds > 300",
        1,
    )
    assert broken != alerts_text()
    (tmp_path / "alerts.yaml").write_text(broken)
    checked = run(promtool, "check", "rules", "alerts.yaml", cwd=tmp_path)
    assert checked.returncode != 0
    assert "VerityOutboxStuck" in checked.stdout + checked.stderr or "parse error" in (
        checked.stdout + checked.stderr
    )


def test_a_wrong_expectation_fails_promtool_test(promtool: Path, tmp_path: Path) -> None:
    (tmp_path / "alerts.yaml").write_text(alerts_text())
    tests = (MONITORING / "alerts.test.yaml").read_text()
    wrong = tests.replace(
        "severity: critical\n              job: verity-wallet",
        "severity: info\n              job: verity-wallet",
        1,
    )
    assert wrong != tests
    (tmp_path / "alerts.test.yaml").write_text(wrong)
    tested = run(promtool, "test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "VerityTargetDown" in tested.stdout + tested.stderr


def test_dashboard_expressions_parse(promtool: Path, tmp_path: Path) -> None:
    # Grafana's variables become what they would expand to; each expression a recording rule.
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, expr in enumerate(dashboard_exprs()):
        concrete = expr.replace("$__rate_interval", "5m").replace("$namespace", ".*")
        lines += [f"      - record: dashboard:expr{i}", f"        expr: {json.dumps(concrete)}"]
    (tmp_path / "dashboard.yaml").write_text("\n".join(lines) + "\n")
    checked = run(promtool, "check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_only_exported_metrics_are_used(source: str) -> None:
    text = alerts_text() if source == "alerts" else "\n".join(dashboard_exprs())
    used = set(re.findall(r"\bverity_[a-z_]+\b", text))
    assert used, source
    assert used <= exported_samples(), used - exported_samples()


def test_dashboard_covers_what_operators_watch() -> None:
    exprs = "\n".join(dashboard_exprs())
    for needed in (
        "verity_http_requests_total",
        "verity_http_request_duration_seconds_bucket",
        'status=~"5.."',
        'reason="insufficient_funds"',
        "sum by (label) (rate(verity_detects_total",
        "sum by (modality) (rate(verity_detects_total",
        "verity_analysis_seconds_bucket",
        "verity_outbox_backlog",
        "verity_outbox_oldest_age_seconds",
        "verity_consumer_lag",
        "verity_dead_letters_total",
        "verity_callback_deliveries_total",
        "up{",
    ):
        assert needed in exprs, needed
    board = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_prometheus_rule_embeds_the_rule_file() -> None:
    path: Path = generate.RULE_YAML
    assert path.read_text() == generate.prometheus_rule(alerts_text())
    dashboard: Path = generate.DASHBOARD
    assert dashboard.read_text() == generate.render()[dashboard]
