"""The security settings reach both Kafka clients (kafka-python for the commands, aiokafka under Faust)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import faust
import pytest

from pipeline.kafka.config import faust_broker_options, kafka_python_config
from pipeline.settings import Settings


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key, standing in for the CA's and the client's."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pantau-worker",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_sasl_ssl_with_scram_reaches_both_clients(certificate: tuple[Path, Path]) -> None:
    ca, _ = certificate
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="pantau-worker",
        kafka_sasl_password="s3cret",  # type: ignore[arg-type]
        kafka_ssl_cafile=ca,
    )
    config = kafka_python_config(settings, "k1:9093,k2:9093")
    assert config["bootstrap_servers"] == ["k1:9093", "k2:9093"]
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("pantau-worker", "s3cret")
    assert config["ssl_cafile"] == str(ca)
    credentials = faust_broker_options(settings, "k1:9093")["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == "SCRAM-SHA-512" and credentials.ssl_context is not None


def test_ssl_with_a_client_certificate_reaches_both_clients(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    settings = Settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=cert, kafka_ssl_certfile=cert, kafka_ssl_keyfile=key
    )
    config = kafka_python_config(settings, "k1:9093")
    assert (config["ssl_certfile"], config["ssl_keyfile"]) == (str(cert), str(key))
    assert "sasl_mechanism" not in config
    credentials = faust_broker_options(settings, "k1:9093")["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)  # the chain loaded: a wrong key would raise


def test_a_key_that_does_not_match_the_certificate_is_refused_at_start(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, _ = certificate
    other = tmp_path / "other.key"
    subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"], check=True, capture_output=True)
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_certfile=cert, kafka_ssl_keyfile=other)
    with pytest.raises(Exception, match=r"(?i)key values mismatch"):
        faust_broker_options(settings, "k1:9093")
