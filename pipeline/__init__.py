"""Pantau Banten: social-media listening for Banten public services (Kafka → Faust → Elasticsearch)."""

__version__ = "0.1.0"
