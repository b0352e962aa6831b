"""Collect and render a brief into a file: the one path `pantau report` and the demo share."""

from __future__ import annotations

from pathlib import Path

from elasticsearch import Elasticsearch

from pipeline.brief.data import Indices, Period, collect
from pipeline.brief.render import Lang, render
from pipeline.settings import Settings


def write_brief(
    es: Elasticsearch,
    settings: Settings,
    period: Period,
    out: Path,
    agency: str | None = None,
    region: str | None = None,
    lang: Lang = "id",
) -> Path:
    data = collect(es, Indices.of(settings), period, agency, region)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data, lang), encoding="utf-8")
    return out.resolve()
