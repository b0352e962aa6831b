"""Kibana saved objects (data views, Lens dashboards) built in code, and their import."""
