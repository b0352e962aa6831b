"""Benchmarks that print numbers (speed and memory are measured here, never asserted in tests)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from pipeline.settings import get_settings

app = typer.Typer(help="Measure throughput and memory.", no_args_is_help=True)
console = Console()


@app.command("model", help="Sentiment model: texts/s at several batch sizes and text lengths, peak memory.")
def model(
    model_dir: Path | None = typer.Option(None, "--model", help="model directory (default: the shipped one)"),
    batch_sizes: str = typer.Option("1,8,32", help="comma-separated batch sizes"),
) -> None:
    from pipeline.model.bench import run_model_bench

    settings = get_settings()
    sizes = tuple(int(b) for b in batch_sizes.split(","))
    run_model_bench(model_dir or settings.model_dir, batch_sizes=sizes, console=console)
