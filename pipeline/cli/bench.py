"""Benchmarks that print numbers (speed and memory are measured here, never asserted in tests)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from pipeline.settings import get_settings

app = typer.Typer(help="Measure throughput and memory.", no_args_is_help=True)
console = Console()


@app.command("model", help="Encoder + heads: texts/s per backend, batch size and text length; peak memory.")
def model(
    model_dir: Path | None = typer.Option(None, "--model", help="model directory (default PANTAU_MODEL_DIR)"),
    batch_sizes: str = typer.Option("1,8,32", help="comma-separated batch sizes"),
    backends: str = typer.Option(
        "fp32,int8,onnx-int8", help="comma-separated backends (the pipeline runs PANTAU_MODEL_BACKEND)"
    ),
    threads: int = typer.Option(2, "--threads", help="inference threads"),
) -> None:
    from pipeline.cli.model import _backend
    from pipeline.model.bench import run_model_bench

    run_model_bench(
        model_dir or get_settings().model_dir,
        batch_sizes=tuple(int(b) for b in batch_sizes.split(",")),
        console=console,
        backends=tuple(_backend(b.strip()) for b in backends.split(",")),
        threads=threads,
    )


@app.command("topics", help="Topic discovery: posts/s through the window, time of one update at each size.")
def topics(sizes: str = typer.Option("10000,100000", help="comma-separated window sizes (posts)")) -> None:
    from pipeline.topics.bench import run_topics_bench

    run_topics_bench(console, sizes=tuple(int(s) for s in sizes.split(",")))
