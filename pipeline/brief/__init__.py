"""The weekly brief: one self-contained HTML page for people who do not open Kibana."""
