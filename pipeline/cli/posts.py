"""Getting posts in (``produce``) and enriching them offline (``classify``)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from pipeline.cli.output import make_console
from pipeline.report import progress_bar
from pipeline.settings import Settings, get_settings
from pipeline.wording import plural

console = make_console(stderr=True)


PARTLY_DONE = 3
"""Exit status when the command ran but reported lines it could not take (the rest were sent/written);
1 is "could not run" (no servers, no model), 2 a usage error."""


def register(app: typer.Typer) -> None:
    app.command(
        help="Stream a JSONL or CSV file of raw posts into the raw topic; invalid lines are reported "
        "(exit 3 when there were any)."
    )(produce)
    app.command(
        help="Print one post's document (JSON: index, key, document) from whichever monthly index holds it; "
        "exit 1 when none does."
    )(post)
    app.command(
        help="Enrich one text (JSON to stdout) or a file (--input/--output) with the pipeline's code "
        "(exit 3 when lines were rejected)."
    )(classify)


def post(key: str = typer.Argument(..., help="the post's key, platform:id (e.g. x:1790012345)")) -> None:
    from elasticsearch import ApiError, NotFoundError, TransportError

    from pipeline.cli.endpoints import running_endpoints
    from pipeline.sinks.elasticsearch import sync_client

    settings = get_settings()
    endpoints = running_endpoints(settings, console)
    es = sync_client(settings, endpoints.elasticsearch)
    try:  # `GET alias/_doc/ID` fails once the alias spans two monthly indices; an ids query does not
        hits = es.search(index=settings.index_alias, query={"ids": {"values": [key]}}, size=10)["hits"][
            "hits"
        ]
    except NotFoundError:
        hits = []
    except (ApiError, TransportError) as exc:
        console.print(
            f"[red]error:[/red] Elasticsearch at {endpoints.elasticsearch}: {str(exc).splitlines()[0]}"
        )
        raise typer.Exit(1) from None
    finally:
        es.close()
    if not hits:
        console.print(f"no post with key {key} in {settings.index_alias}")
        raise typer.Exit(1)
    if len(hits) > 1:
        console.print(f"[yellow]warning:[/yellow] {key} is in {len(hits)} indices; each is printed")
    for hit in hits:
        print(
            json.dumps(
                {"index": hit["_index"], "key": hit["_id"], "document": hit["_source"]}, ensure_ascii=False
            )
        )


def produce(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL or CSV of raw posts"),
) -> None:
    from kafka.errors import KafkaError

    from pipeline.cli.endpoints import running_endpoints
    from pipeline.kafka.producer import produce_file
    from pipeline.kafka.topics import ensure_topics
    from pipeline.sources.files import count_records

    settings = get_settings()
    endpoints = running_endpoints(settings, console)
    try:
        ensure_topics(settings, endpoints.kafka)
        with progress_bar(console) as progress:
            task = progress.add_task(f"producing {path.name}", total=count_records(path))
            report = produce_file(settings, endpoints.kafka, path, on_record=lambda: progress.advance(task))
    except KafkaError as exc:
        console.print(f"[red]error:[/red] Kafka at {endpoints.kafka}: {exc!r}")
        raise typer.Exit(1) from None
    for bad in report.invalid:
        console.print(f"[yellow]{path}:{bad.line}: not sent:[/yellow] {bad.reason}")
    console.print(
        f"sent {plural(report.sent, 'post')} to {settings.topic_raw}; "
        f"{plural(len(report.invalid), 'invalid line')}"
    )
    _warn_if_nobody_consumes(settings, endpoints.kafka)
    if report.invalid:
        raise typer.Exit(PARTLY_DONE)


def _warn_if_nobody_consumes(settings: Settings, bootstrap: str) -> None:
    """One line when no worker is in the consumer group: the posts then wait in Kafka, and nothing else
    would say so. Never fails the produce."""
    from kafka.errors import KafkaError

    from pipeline.kafka.groups import consumer_group_members

    try:
        members = consumer_group_members(settings, bootstrap)
    except (KafkaError, ValueError, OSError) as exc:
        console.print(
            f"[yellow]warning:[/yellow] cannot tell whether a worker consumes {settings.topic_raw} "
            f"(consumer group {settings.app_id}: {str(exc) or repr(exc)})",
            soft_wrap=True,
        )
        return
    if members == 0:
        console.print(
            f"[yellow]warning:[/yellow] no worker is consuming {settings.topic_raw} (consumer group "
            f"{settings.app_id} has no members): the posts wait in Kafka until one runs; `pantau status` "
            "says why the worker stopped",
            soft_wrap=True,
        )


def classify(
    text: str | None = typer.Argument(None, help="a post's text"),
    input: Path | None = typer.Option(
        None, "--input", "-i", exists=True, dir_okay=False, help="JSONL/CSV of raw posts"
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="enriched JSONL (default: stdout)"),
) -> None:
    from pipeline.enrich.enricher import Enricher
    from pipeline.validation import Rejected, validate_raw_post

    settings = get_settings()
    if (text is None) == (input is None):
        console.print("[red]error:[/red] give either a TEXT or --input FILE")
        raise typer.Exit(2)
    if output is not None and input is None:
        console.print("[red]error:[/red] --output goes with --input (one TEXT is printed to stdout)")
        raise typer.Exit(2)
    if output is not None and input is not None and output.resolve() == input.resolve():
        console.print("[red]error:[/red] --output would overwrite --input: write to another file")
        raise typer.Exit(2)
    enricher = Enricher.from_settings(settings)
    if text is not None:
        try:
            post = validate_raw_post(
                {"id": "cli", "platform": "other", "text": text, "created_at": datetime.now(UTC).isoformat()}
            )
        except Rejected as exc:
            console.print(f"[red]rejected:[/red] {exc.reason}")
            raise typer.Exit(PARTLY_DONE) from None
        result = enricher.enrich([post])[0]
        if isinstance(result, Rejected):
            console.print(f"[red]rejected ({result.stage}):[/red] {result.reason}")
            raise typer.Exit(PARTLY_DONE)
        print(result.model_dump_json(indent=2, exclude_none=True))
        return
    assert input is not None
    failures = _classify_file(enricher, input, output)
    if failures:
        raise typer.Exit(PARTLY_DONE)


def _classify_file(enricher: object, input: Path, output: Path | None) -> int:
    from pipeline.enrich.enricher import Enricher
    from pipeline.sources.files import count_records, read_records
    from pipeline.validation import Rejected, validate_raw_post

    assert isinstance(enricher, Enricher)
    out = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115 - closed below
    failures = written = 0
    batch: list[tuple[int, object]] = []

    def flush() -> None:
        nonlocal failures, written
        posts = [post for _, post in batch]
        for (line, _), result in zip(batch, enricher.enrich(posts), strict=True):  # type: ignore[arg-type]
            if isinstance(result, Rejected):
                failures += 1
                console.print(f"[yellow]{input}:{line}: {result.stage}:[/yellow] {result.reason}")
            else:
                out.write(result.model_dump_json(exclude_none=True) + "\n")
                written += 1
        batch.clear()

    try:
        with progress_bar(console) as progress:
            task = progress.add_task(f"classifying {input.name}", total=count_records(input))
            for record in read_records(input):
                progress.advance(task)
                if record.data is None:
                    failures += 1
                    console.print(f"[yellow]{input}:{record.line}:[/yellow] {record.error}")
                    continue
                try:
                    batch.append((record.line, validate_raw_post(record.data)))
                except Rejected as exc:
                    failures += 1
                    console.print(f"[yellow]{input}:{record.line}: {exc.stage}:[/yellow] {exc.reason}")
                if len(batch) >= 32:
                    flush()
            if batch:
                flush()
    finally:
        if output:
            out.close()
    console.print(f"enriched {plural(written, 'post')}; {plural(failures, 'line')} reported")
    return failures
