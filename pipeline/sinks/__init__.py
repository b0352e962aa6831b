"""Where enriched posts go: Elasticsearch (Kafka's enriched topic is written by the agents)."""
