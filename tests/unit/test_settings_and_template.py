"""Settings come from PANTAU_* variables; the index template adapts to what the cluster has."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline.settings import Settings, get_settings
from pipeline.sinks.elasticsearch import ClusterFeatures, index_name, render_template


def test_settings_read_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANTAU_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("PANTAU_ES_URL", "https://es:9200")
    monkeypatch.setenv("PANTAU_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("PANTAU_ES_API_KEY", "secret")
    settings = Settings()
    assert settings.kafka_bootstrap == "k1:9092,k2:9092"
    assert settings.es_url == "https://es:9200"
    assert settings.topic_partitions == 12
    assert settings.es_api_key is not None and "secret" not in repr(settings)


def test_settings_reject_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANTAU_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValueError, match="topic_partitions"):
        Settings()


def test_bad_variables_are_one_line_each_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PANTAU_BATCH_SIZE", "abc")
    monkeypatch.setenv("PANTAU_WORKER_LOG_LEVEL", "verbose")
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exit_:
        get_settings()
    get_settings.cache_clear()
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("error: PANTAU_BATCH_SIZE='abc': ")
    assert lines[1].startswith("error: PANTAU_WORKER_LOG_LEVEL='verbose': ")


def test_paths_expand_home_and_retention_zero_keeps_indices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANTAU_RUN_DIR", "~/pantau-run")
    monkeypatch.setenv("PANTAU_INDEX_RETENTION_DAYS", "0")
    settings = Settings()
    assert settings.run_dir == Path.home() / "pantau-run"
    template = render_template(settings, ClusterFeatures(version="8.15.3", indonesian_stemmer=True, ilm=True))
    assert "index.lifecycle.name" not in template["template"]["settings"]


def test_monthly_index_uses_utc_month() -> None:
    settings = Settings(index_prefix="p")
    wib = timezone(timedelta(hours=7))
    assert index_name(settings, datetime(2026, 12, 1, 3, 0, tzinfo=wib)) == "p-2026.11"
    assert index_name(settings, datetime(2026, 12, 1, 8, 0, tzinfo=wib)) == "p-2026.12"


def test_template_without_stemmer_or_ilm() -> None:
    settings = Settings(index_prefix="p", index_replicas=2)
    template = render_template(
        settings, ClusterFeatures(version="8.15.3", indonesian_stemmer=False, ilm=False)
    )
    index = template["template"]["settings"]
    assert template["index_patterns"] == ["p-*"] and template["template"]["aliases"] == {"p": {}}
    assert index["number_of_replicas"] == 2
    assert "id_stem" not in index["analysis"]["analyzer"]["pantau_text"]["filter"]
    assert "index.lifecycle.name" not in index


def test_template_with_stemmer_and_ilm() -> None:
    settings = Settings(index_prefix="p")
    template = render_template(settings, ClusterFeatures(version="8.15.3", indonesian_stemmer=True, ilm=True))
    index = template["template"]["settings"]
    assert index["analysis"]["analyzer"]["pantau_text"]["filter"][-1] == "id_stem"
    assert index["index.lifecycle.name"] == "p-retention"
