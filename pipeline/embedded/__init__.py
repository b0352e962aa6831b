"""Embedded Kafka (Tansu) and Elasticsearch (noida-db) servers for a machine without Docker."""
