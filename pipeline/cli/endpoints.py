"""The endpoints of the running pipeline for commands that talk to it, or a clear error and exit 1."""

from __future__ import annotations

import typer
from rich.console import Console

from pipeline.embedded.process import ServerError
from pipeline.embedded.stack import Endpoints, resolve_endpoints
from pipeline.settings import Settings


def running_endpoints(settings: Settings, console: Console) -> Endpoints:
    try:
        return resolve_endpoints(settings)
    except ServerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
