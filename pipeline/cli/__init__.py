"""``pantau``: the command line of Pantau Banten."""

from __future__ import annotations

import sys

import typer

from pipeline.cli import (
    alerts,
    bench,
    brief,
    deadletters,
    ingest,
    kibana,
    label,
    model,
    posts,
    responsiveness,
    schema,
    service,
    topics,
)

app = typer.Typer(
    name="pantau",
    help="Pantau Banten: social-media listening for Banten public services (Kafka → Faust → Elasticsearch).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=sys.stderr.isatty(),  # piped: a plain traceback, not a box of 80 columns
)
service.register(app)
posts.register(app)
topics.register(app)
alerts.register(app)
brief.register(app)
app.add_typer(deadletters.app, name="deadletter")
app.add_typer(schema.app, name="schema")
app.add_typer(model.app, name="model")
app.add_typer(label.app, name="label")
app.add_typer(bench.app, name="bench")
app.add_typer(kibana.app, name="kibana")
app.add_typer(responsiveness.app, name="responsiveness")
app.add_typer(ingest.app, name="ingest")


def main() -> None:
    app()
