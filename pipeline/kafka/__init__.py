"""Kafka plumbing: client configuration, topic creation, the file producer."""
