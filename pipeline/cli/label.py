"""``pantau label``: the correction loop. Export predicted labels for analysts, import their corrections."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from pipeline.cli.output import make_console
from pipeline.cli.posts import PARTLY_DONE
from pipeline.cli.topics import parse_duration
from pipeline.settings import get_settings
from pipeline.wording import plural

app = typer.Typer(
    help="Correct predicted labels: export indexed posts to a CSV, import the analysts' corrections.",
    no_args_is_help=True,
)
console = make_console(stderr=True)


@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", help="CSV to write (UTF-8; opens in a spreadsheet program)"),
    since: str = typer.Option("7d", "--since", help="posts created in the last --since, e.g. 24h, 7d"),
    agency: str | None = typer.Option(None, "--agency", help="only posts about this agency id (e.g. samsat)"),
    limit: int = typer.Option(
        2000, "--limit", min=1, max=10000, help="at most this many posts, newest first"
    ),
) -> None:
    """Write indexed posts with their predicted sentiment, category and agencies, and empty correct_* columns.

    Fill in correct_sentiment, correct_category or correct_agencies (samsat;dukcapil, or "none") only where
    the prediction is wrong; a row with every correct_* cell empty is skipped on import."""
    from elasticsearch import ApiError, NotFoundError, TransportError

    from pipeline.cli.endpoints import running_endpoints
    from pipeline.corrections import fetch_for_labelling, write_export
    from pipeline.sinks.elasticsearch import sync_client
    from schemas.vocab import Agency

    if agency is not None and agency not in {a.value for a in Agency}:
        raise typer.BadParameter(f"{agency!r} is not one of {', '.join(a.value for a in Agency)}")
    settings = get_settings()
    window = parse_duration(since)
    endpoints = running_endpoints(settings, console)
    es = sync_client(settings, endpoints.elasticsearch)
    try:
        rows = fetch_for_labelling(es, settings.index_alias, window, agency, limit)
    except NotFoundError:
        rows = []
    except (ApiError, TransportError) as exc:
        console.print(
            f"[red]error:[/red] Elasticsearch at {endpoints.elasticsearch}: {str(exc).splitlines()[0]}"
        )
        raise typer.Exit(1) from None
    finally:
        es.close()
    count = write_export(rows, out)
    about = f" about {agency}" if agency else ""
    console.print(f"wrote {plural(count, 'post')}{about} of the last {since} to {out}")


@app.command("import")
def import_(
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="an edited CSV of `pantau label export`"
    ),
    by: str | None = typer.Option(None, "--by", help="who corrected the labels (default $USER)"),
    to: Path | None = typer.Option(
        None, "--to", help="labelled file to add to (default data/corrections/corrections.jsonl)"
    ),
) -> None:
    """Validate each row and add the corrections, with who, when, the wrong model's version and its
    prediction, to the labelled data that training reads; a later correction of a post replaces the earlier
    one. Invalid rows are reported by line and left out (exit 3), the valid ones are kept."""
    from pipeline.corrections import CORRECTIONS_FILE, default_author, merge_corrections, read_corrections_csv

    target = to or CORRECTIONS_FILE
    try:
        report = read_corrections_csv(path, by=by or default_author())
        for line, why in report.bad:
            console.print(
                f"[yellow]{escape(str(path))}:{line}: not imported:[/yellow] {escape(why)}", soft_wrap=True
            )
        added, replaced = merge_corrections(target, report.corrections)
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(
        f"{plural(added, 'correction')} added and {replaced} replaced in {target}; "
        f"{plural(report.unchanged, 'row')} without a correction skipped; "
        f"{plural(len(report.bad), 'invalid row')}"
    )
    if report.bad:
        raise typer.Exit(PARTLY_DONE)
