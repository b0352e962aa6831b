"""The deployment files: the compose file is valid Compose Specification, the systemd unit verifies, and
every setting they (and the Kubernetes manifest) name is one the worker reads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipeline.settings import REPO_ROOT, Settings

SCHEMA = REPO_ROOT / "tests" / "data" / "compose-spec" / "compose-spec.json"
UNIT = REPO_ROOT / "deploy" / "systemd" / "pantau-worker.service"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text()))


def compose_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def settings_names(names: list[str]) -> list[str]:
    """The names that are no PANTAU_* setting."""
    known = {f"PANTAU_{field.upper()}" for field in Settings.model_fields}
    return [name for name in names if name.startswith("PANTAU_") and name not in known]


def test_the_compose_file_is_valid_compose_specification() -> None:
    assert compose_errors(compose()) == []


def test_the_schema_check_can_fail() -> None:
    broken = compose()
    broken["services"]["worker"]["healthcheck"]["every"] = "30s"  # not a healthcheck key
    broken["services"]["worker"]["restart"] = ["always"]
    errors = compose_errors(broken)
    assert any("every" in e for e in errors) and any("restart" in e for e in errors)


def test_the_compose_worker_has_a_healthcheck_on_its_metrics_endpoint() -> None:
    worker = compose()["services"]["worker"]
    port = worker["environment"]["PANTAU_METRICS_PORT"]
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])
    assert settings_names(list(worker["environment"])) == []


def test_the_systemd_unit_restarts_reads_its_environment_file_and_is_hardened(tmp_path: Path) -> None:
    text = UNIT.read_text()
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert lines["Restart"] == "always" and lines["StartLimitIntervalSec"] == "0"
    assert lines["EnvironmentFile"] == "/etc/pantau/worker.env"
    assert lines["ExecStart"].endswith("/pantau worker")
    assert lines["NoNewPrivileges"] == "yes" and lines["ProtectSystem"] == "strict"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # verify the unit as shipped, with its ExecStart pointing at this checkout's `pantau`
    local = tmp_path / UNIT.name
    local.write_text(
        text.replace("/opt/pantau/.venv/bin/pantau", str(Path(sys.executable).parent / "pantau"))
    )
    result = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_example_environment_file_holds_only_settings_the_worker_reads(tmp_path: Path) -> None:
    path = REPO_ROOT / "deploy" / "systemd" / "worker.env.example"
    names = [
        line.split("=", 1)[0] for line in path.read_text().splitlines() if line and not line.startswith("#")
    ]
    assert settings_names(names) == [] and names
    settings = Settings(_env_file=path)  # type: ignore[call-arg]
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.metrics_port == 9108


def test_the_kubernetes_manifest_has_a_deployment_configmap_and_secret_of_known_settings() -> None:
    documents = list(yaml.safe_load_all((REPO_ROOT / "deploy" / "k8s" / "pantau-worker.yaml").read_text()))
    by_kind = {d["kind"]: d for d in documents}
    assert set(by_kind) == {"ConfigMap", "Secret", "Deployment"}
    container = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    names = list(by_kind["ConfigMap"]["data"]) + [e["name"] for e in container["env"]]
    assert settings_names(names) == []
    assert container["livenessProbe"]["httpGet"]["path"] == "/metrics"
    assert by_kind["ConfigMap"]["data"]["PANTAU_METRICS_PORT"] == str(container["ports"][0]["containerPort"])
