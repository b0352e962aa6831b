"""One translation of :class:`Settings` into kafka-python and Faust connection options."""

from __future__ import annotations

import ssl
from typing import Any

from pipeline.settings import Settings


def kafka_python_config(settings: Settings, bootstrap: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap.split(","),
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": 30_000,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        )
    if settings.kafka_ssl_cafile:
        config["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        config["ssl_certfile"] = str(settings.kafka_ssl_certfile)
        config["ssl_keyfile"] = str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None
    return config


def faust_broker_options(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """``broker`` URL(s) and ``broker_credentials`` for :class:`faust.App`."""
    import faust

    options: dict[str, Any] = {"broker": [f"kafka://{hostport}" for hostport in bootstrap.split(",")]}
    protocol = settings.kafka_security_protocol
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    if settings.kafka_ssl_certfile:  # mutual TLS: the broker knows the client by its certificate
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        options["broker_credentials"] = faust.SASLCredentials(
            username=settings.kafka_sasl_username or "",
            password=password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context if protocol == "SASL_SSL" else None,
        )
    elif protocol == "SSL":
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options
