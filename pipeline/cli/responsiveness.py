"""``pantau responsiveness``: reply rate, first-response times and overdue complaints per agency; ``mark``
corrects one record (answered by phone or DM, or not a complaint at all)."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

import typer

from pipeline.cli.output import make_console, print_table
from pipeline.cli.topics import parse_duration
from pipeline.settings import get_settings

console = make_console()
notes = make_console(stderr=True)  # errors and remarks: stdout carries only the table or the JSON
app = typer.Typer(
    help="Agency responsiveness: complaints, replies, first-response times, overdue (see `mark`).",
    invoke_without_command=True,
)


@app.callback()
def responsiveness(
    ctx: typer.Context,
    since: str = typer.Option("30d", "--since", help="complaints made in this window, e.g. 24h, 7d, 30d"),
    agency: str | None = typer.Option(None, "--agency", help="only this agency"),
    by: str | None = typer.Option(None, "--by", help="'region': one row per agency and region"),
    as_json: bool = typer.Option(False, "--json", help="a JSON array instead of a table"),
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.cli.endpoints import running_endpoints
    from pipeline.responsiveness.report import read_documents, summarise
    from pipeline.sinks.elasticsearch import sync_client

    if by not in (None, "region"):
        notes.print(f"[red]error:[/red] --by {by}: only 'region' is known")
        raise typer.Exit(2)
    settings = get_settings()
    now = datetime.now(UTC)
    window = parse_duration(since)
    es = sync_client(settings, running_endpoints(settings, notes).elasticsearch)
    try:
        rows = summarise(
            read_documents(es, settings.responses_index, now - window, agency), now, by == "region"
        )
    finally:
        es.close()
    if as_json:
        typer.echo(json.dumps([row.as_json(by == "region") for row in rows], ensure_ascii=False))
        return
    if not rows:
        notes.print(f"no complaints to an agency in the last {since}")
        return
    headers = ["agency", *(["region"] if by else []), "complaints", "responded", "reply_rate"]
    headers += ["median_first_reply", "p90_first_reply", "overdue"]
    table_rows = [
        [
            row.agency,
            *([row.region or "-"] if by else []),
            row.complaints,
            row.responded,
            f"{row.reply_rate:.0%}",
            _duration(row.median_first_response_s),
            _duration(row.p90_first_response_s),
            row.overdue,
        ]
        for row in rows
    ]
    print_table(console, headers, table_rows, title=f"responsiveness, complaints of the last {since}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@app.command(help="Correct one record: answered elsewhere (phone, DM, counter) or not a complaint at all.")
def mark(
    key: str = typer.Argument(..., help="the record's key, complaint key|agency (e.g. 'x:123|bpbd')"),
    handled_elsewhere: bool = typer.Option(False, "--handled-elsewhere", help="answered off this channel"),
    not_a_complaint: bool = typer.Option(False, "--not-a-complaint", help="misread: not a complaint"),
    why: str = typer.Option(..., "--why", help="the reason, kept on the record"),
    by: str | None = typer.Option(None, "--by", help="who marks it (default: the login name)"),
) -> None:
    from pipeline.cli.endpoints import running_endpoints
    from pipeline.kafka.producer import make_producer
    from pipeline.sinks.elasticsearch import sync_client
    from schemas.responses import ResponseMark

    if handled_elsewhere == not_a_complaint:
        notes.print("[red]error:[/red] give exactly one of --handled-elsewhere and --not-a-complaint")
        raise typer.Exit(2)
    by = by or _login()
    settings = get_settings()
    endpoints = running_endpoints(settings, notes)
    es = sync_client(settings, endpoints.elasticsearch)
    try:
        found = es.options(ignore_status=404).get(index=settings.responses_index, id=key)
    finally:
        es.close()
    if not found.get("found"):
        notes.print(f"[red]error:[/red] no record {key!r} in {settings.responses_index}")
        raise typer.Exit(1)
    message = ResponseMark(
        record=key,
        mark="handled_elsewhere" if handled_elsewhere else "not_a_complaint",
        by=by,
        why=why,
        at=datetime.now(UTC),
    )
    # Through the worker, the records' one writer; keyed by the record's thread, like its posts.
    producer = make_producer(settings, endpoints.kafka)
    try:
        producer.send(
            settings.topic_responses_input,
            key=found["_source"]["thread"].encode(),
            value=message.model_dump_json().encode(),
        ).get(timeout=60)
    finally:
        producer.close()
    notes.print(f"marked {key} as {message.mark} (by {by}); the worker updates the record")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "unknown"
