"""``pantau deadletter``: what the pipeline could not process, why, and sending it back once fixed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer

from pipeline.cli.endpoints import running_endpoints
from pipeline.cli.output import make_console, print_table
from pipeline.cli.topics import parse_duration
from pipeline.settings import Settings, get_settings
from pipeline.wording import plural
from schemas.posts import DeadLetter

app = typer.Typer(
    help="List the dead-letter topic and replay letters whose cause is fixed.", no_args_is_help=True
)
console = make_console(stderr=True)
out = make_console()

STAGE_HELP = "only letters from this stage: decode, validate, enrich, index, topics (repeatable)"
KEY_HELP = "only letters of this post key, platform:id (repeatable)"
GREP_HELP = "only letters whose reason contains this text (any case)"
SINCE_HELP = "only letters written within this long, e.g. 90m, 24h, 7d"


def _letters(
    settings: Settings, kafka: str, stages: list[str], keys: list[str], grep: str | None, since: str | None
) -> list[DeadLetter]:
    from pipeline.tracking import DeadLetterReader, select_letters

    cutoff = datetime.now(UTC) - parse_duration(since) if since else None
    reader = DeadLetterReader(settings, kafka)
    try:
        with console.status(f"reading {settings.topic_dead_letter} …"):
            letters = reader.read_all()
    finally:
        reader.close()
    if not reader.complete:
        console.print(
            "[yellow]the topic was not read to its end within a minute: letters may be missing[/yellow]"
        )
    if reader.unreadable:
        console.print(
            f"[yellow]{reader.unreadable} records on the topic are not dead letters: skipped[/yellow]"
        )
    return select_letters(letters, stages=stages, keys=keys, grep=grep, since=cutoff)


@app.command("list", help="Show dead letters: when, stage, post key, where from and why (newest last).")
def list_letters(
    stage: list[str] = typer.Option([], "--stage", help=STAGE_HELP),
    key: list[str] = typer.Option([], "--key", help=KEY_HELP),
    grep: str | None = typer.Option(None, "--grep", help=GREP_HELP),
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    limit: int = typer.Option(50, "--limit", min=0, help="show the newest N (0: all)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON letter per line, with its post key"),
) -> None:
    from pipeline.tracking import dead_letter_key

    settings = get_settings()
    letters = _letters(settings, running_endpoints(settings, console).kafka, stage, key, grep, since)
    shown = letters[-limit:] if limit else letters
    if as_json:
        for letter in shown:
            print(json.dumps({"key": dead_letter_key(letter), **letter.model_dump(mode="json")}))
        return
    title = plural(len(letters), "dead letter") + (
        f", newest {len(shown)}" if len(shown) < len(letters) else ""
    )
    rows = [
        [
            letter.failed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            letter.stage,
            dead_letter_key(letter) or "?",
            f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}",
            letter.reason
            + (
                f" [letter keeps the first bytes of {letter.original_size or 0:,}: not replayable]"
                if letter.original_truncated
                else ""
            ),
        ]
        for letter in shown
    ]
    if not out.is_terminal:  # piped: the table alone on stdout, the count on stderr
        console.print(title)
    headers = ["failed_at_utc", "stage", "post_key", "from", "reason"]
    print_table(out, headers, rows, title=title if out.is_terminal else None)


@app.command(help="Send matching letters' original messages back to the topics they came from.")
def replay(
    stage: list[str] = typer.Option([], "--stage", help=STAGE_HELP),
    key: list[str] = typer.Option([], "--key", help=KEY_HELP),
    grep: str | None = typer.Option(None, "--grep", help=GREP_HELP),
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would be sent, send nothing"),
) -> None:
    from pipeline.kafka.producer import replay_dead_letters
    from pipeline.tracking import latest_per_message

    if not (stage or key or grep or since):
        console.print("[red]error:[/red] say which letters: --stage, --key, --grep or --since")
        raise typer.Exit(2)

    settings = get_settings()
    kafka = running_endpoints(settings, console).kafka
    letters = latest_per_message(_letters(settings, kafka, stage, key, grep, since))  # one per message
    if dry_run or not letters:
        console.print(f"{plural(len(letters), 'letter matches', 'letters match')}; nothing sent")
        return
    report = replay_dead_letters(settings, kafka, letters)
    for topic, n in sorted(report.sent.items()):
        console.print(f"sent {plural(n, 'message')} back to {topic}")
    if report.no_source:
        console.print(
            f"[yellow]{plural(report.no_source, 'letter names', 'letters name')} no source topic: "
            "not sent[/yellow]"
        )
    for letter in report.truncated:
        what = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
        console.print(
            f"[yellow]not sent: the letter of {what} keeps only the first bytes of a "
            f"{letter.original_size or 0:,}-byte message (sha256 {letter.original_sha256}), cut to fit "
            f"the dead-letter topic; send the post again from its source[/yellow]"
        )
    if report.truncated:
        raise typer.Exit(3)
