"""``pantau topics``: the current emerging topics as a table."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import typer

from pipeline.cli.output import make_console, print_table
from pipeline.report import query_topics, render_topics, topic_row
from pipeline.settings import get_settings

console = make_console()
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")


def register(app: typer.Typer) -> None:
    app.command(help="Current emerging topics: label, size, growth, sentiment mix, agencies, regions.")(
        topics
    )


def parse_duration(text: str) -> timedelta:
    match = DURATION.match(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r}: use a number with m, h or d, e.g. 90m, 24h, 7d")
    value, unit = float(match.group(1)), match.group(2)
    return timedelta(minutes=value) if unit == "m" else timedelta(hours=value if unit == "h" else value * 24)


def topics(
    since: str = typer.Option("24h", "--since", help="activity window, e.g. 90m, 24h, 7d (stream time)"),
    agency: str | None = typer.Option(None, "--agency", help="only topics with this agency among the top"),
    region: str | None = typer.Option(None, "--region", help="only topics with this BPS region code"),
    limit: int = typer.Option(20, "--limit", help="how many topics"),
    as_json: bool = typer.Option(False, "--json", help="one JSON topic per line, as stored"),
) -> None:
    from elasticsearch import NotFoundError

    from pipeline.cli.endpoints import running_endpoints
    from pipeline.sinks.elasticsearch import sync_client

    settings = get_settings()
    window = parse_duration(since)
    es = sync_client(settings, running_endpoints(settings, console).elasticsearch)
    try:
        rows = query_topics(es, settings.topics_index, window, agency, region, limit)
    except NotFoundError:
        rows = []
    finally:
        es.close()
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        console.print("no topics yet (discovery needs enough similar public-service posts)")
        return
    if console.is_terminal:
        render_topics(console, rows)
        return
    print_table(
        console,
        ["id", "label", "size", "growth", "posts_last_hour", "neg/neu/pos", "agencies", "regions"],
        [topic_row(row) for row in rows],
    )
