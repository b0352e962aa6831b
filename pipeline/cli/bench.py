"""Benchmarks that print numbers (speed and memory are measured here, never asserted in tests)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from pipeline.settings import get_settings

app = typer.Typer(help="Measure throughput and memory.", no_args_is_help=True)
console = Console()


def _sizes(value: str, option: str) -> tuple[int, ...]:
    """Comma-separated counts, each at least 1; anything else is a usage error, not a traceback."""
    try:
        sizes = tuple(int(part) for part in value.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(
            f"{value!r}: expected whole numbers ≥ 1 separated by commas, e.g. 1,8,32", param_hint=option
        )
    return sizes


@app.command(
    "model",
    help="Sentiment path (encoder + sentiment head; the category head and the rules are not timed): "
    "texts/s per backend, batch size and text length; peak memory.",
)
def model(
    model_dir: Path | None = typer.Option(None, "--model", help="model directory (default PANTAU_MODEL_DIR)"),
    batch_sizes: str = typer.Option("1,8,32", help="comma-separated batch sizes"),
    backends: str = typer.Option(
        "fp32,int8,onnx-int8", help="comma-separated backends (the pipeline runs PANTAU_MODEL_BACKEND)"
    ),
    threads: int = typer.Option(2, "--threads", min=1, help="inference threads"),
) -> None:
    from pipeline.bench.model import run_model_bench
    from pipeline.cli.model import _backend

    run_model_bench(
        model_dir or get_settings().model_dir,
        batch_sizes=_sizes(batch_sizes, "--batch-sizes"),
        console=console,
        backends=tuple(_backend(b.strip()) for b in backends.split(",")),
        threads=threads,
    )


@app.command("topics", help="Topic discovery: posts/s through the window, time of one update at each size.")
def topics(sizes: str = typer.Option("10000,100000", help="comma-separated window sizes (posts)")) -> None:
    from pipeline.bench.topics import run_topics_bench

    run_topics_bench(console, sizes=_sizes(sizes, "--sizes"))
