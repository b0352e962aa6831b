"""Alerts: detection on the enriched stream, subscribers, delivery through signed webhooks and chat/e-mail."""
