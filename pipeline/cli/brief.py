"""``pantau report``: the weekly brief as one self-contained HTML file (and optionally a PDF)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from pipeline.cli.topics import parse_duration
from pipeline.settings import get_settings
from schemas.vocab import REGION_NAMES, Agency

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command(
        "report",
        help="Weekly brief for people who do not open Kibana: one HTML file with inline charts (headline "
        "numbers against the previous period, volume by agency, sentiment, category × region, a kab/kota "
        "map, emerging topics, alerts, responsiveness, most-engaged negative posts); Indonesian by default, "
        "times in Asia/Jakarta.",
    )(report)


def _region(value: str | None) -> str | None:
    if value is None:
        return None
    for region, name in REGION_NAMES.items():
        if value in (region.value, name) or value.lower() == name.lower():
            return region.value
    codes = ", ".join(f"{r.value} ({n})" for r, n in REGION_NAMES.items())
    raise typer.BadParameter(f"{value!r}: use a BPS code or name: {codes}")


def report(
    since: str = typer.Option("7d", "--since", help="length of the period, e.g. 7d, 24h"),
    until: datetime | None = typer.Option(
        None,
        "--until",
        help="end of the period (ISO date/time; default now); the previous period precedes it",
    ),
    agency: str | None = typer.Option(None, "--agency", help="only posts naming this agency, e.g. samsat"),
    region: str | None = typer.Option(None, "--region", help="only this kab/kota: BPS code (3602) or name"),
    lang: str = typer.Option("id", "--lang", help="id (Indonesian) or en"),
    out: Path = typer.Option(Path("brief.html"), "--out", help="HTML file to write"),
    pdf: bool = typer.Option(False, "--pdf", help="also print it to a PDF next to it with headless Chromium"),
) -> None:
    from elasticsearch import NotFoundError

    from pipeline.brief.data import Period
    from pipeline.brief.pdf import print_pdf
    from pipeline.brief.write import write_brief
    from pipeline.cli.endpoints import running_endpoints
    from pipeline.sinks.elasticsearch import sync_client

    if lang not in ("id", "en"):
        raise typer.BadParameter("use id or en", param_hint="--lang")
    if agency is not None and agency not in {a.value for a in Agency}:
        raise typer.BadParameter(
            f"{agency!r}: one of {', '.join(a.value for a in Agency)}", param_hint="--agency"
        )
    region_code = _region(region)
    end = until or datetime.now(UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    period = Period(start=end - parse_duration(since), end=end)
    settings = get_settings()
    es = sync_client(settings, running_endpoints(settings, console).elasticsearch)
    try:
        path = write_brief(es, settings, period, out, agency, region_code, "en" if lang == "en" else "id")
    except NotFoundError:
        typer.echo(f"error: no index {settings.index_alias} yet: nothing has been indexed", err=True)
        raise typer.Exit(1) from None
    finally:
        es.close()
    typer.echo(str(path))
    if pdf:
        target = out.with_suffix(".pdf")
        try:
            print_pdf(out, target)
        except (RuntimeError, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(str(target.resolve()))
