"""JSON Schema of every contract, for producers and consumers outside Python."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Export the message and document contracts as JSON Schema.", no_args_is_help=True)


@app.command("export", help="Write one JSON Schema file per contract into DIR.")
def export(directory: Path = typer.Argument(..., file_okay=False, help="output directory")) -> None:
    from schemas import (
        Alert,
        DeadLetter,
        EmergingTopic,
        EnrichedPost,
        PostDocument,
        RawPost,
        ResponseDocument,
        ResponseMark,
        ThreadPost,
        ThreadPrune,
        TopicAssignment,
        TopicInput,
        TopicPost,
    )
    from schemas.subscribers import SubscribersFile

    directory.mkdir(parents=True, exist_ok=True)
    for model in (
        RawPost,
        EnrichedPost,
        DeadLetter,
        PostDocument,
        TopicPost,
        TopicInput,
        TopicAssignment,
        EmergingTopic,
        ThreadPost,
        ThreadPrune,
        ResponseMark,
        ResponseDocument,
        Alert,
        SubscribersFile,
    ):
        path = directory / f"{model.__name__}.schema.json"
        schema = model.model_json_schema(by_alias=True)
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        typer.echo(f"wrote {path}")
