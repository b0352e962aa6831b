"""Fine-tune the e5 encoder together with the sentiment head, resumably, and write a loadable model dir.

The frozen-embedding head plateaus (SmSA test macro-F1 0.795); updating the transformer layers moves it
(one epoch reached 0.835). This module only puts the parts together, in the order a run needs them; each
part lives in its own module of this package (see ``pipeline/model/training/__init__.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from pipeline.model import encoder as encoder_module
from pipeline.model.data import file_info, load_labelled, load_unlabelled
from pipeline.model.encoder import (
    DEFAULT_MAX_LENGTH,
    Backend,
    embed_texts,
    load_encoder,
    load_pooled_encoder,
    load_tokenizer,
)
from pipeline.model.evaluate import EvalReport, metrics_summary, print_report, report_from_proba
from pipeline.model.layers import EmbeddingLayer
from pipeline.model.sentiment import HEAD_FILE, LABELS, META_FILE, Head
from pipeline.model.train import fit_temperature
from pipeline.model.training.batching import domain_pool, encode, epoch_batches
from pipeline.model.training.checkpoints import Checkpoints, TrainState, run_signature
from pipeline.model.training.classifier import (
    Classifier,
    balanced_class_weight,
    freeze,
    keep_layers,
    lr_factor,
    param_groups,
    softmax,
    starting_head,
)
from pipeline.model.training.config import FinetuneConfig, domain_of
from pipeline.model.training.loop import UNLABELLED, WEIGHT_DECAY, Distillation, TrainingLoop
from pipeline.model.training.storage import write_encoder, write_model
from pipeline.model.training.targets import teacher_targets

if TYPE_CHECKING:
    from rich.console import Console
    from tokenizers import Tokenizer
    from transformers import BertModel

__all__ = [
    "Calibrated",
    "Source",
    "calibrate",
    "calibration_record",
    "finetune_sentiment",
    "labelled_rows",
    "recorded_metrics",
    "unchanged_layers",
]


def labelled_rows(files: Sequence[Path], domains: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Texts, labels and domains of labelled files, in order, each row with its file's domain."""
    texts: list[str] = []
    labels: list[str] = []
    row_domains: list[str] = []
    for path, domain in zip(files, domains, strict=True):
        t, y = load_labelled(path)
        texts, labels, row_domains = texts + t, labels + y, row_domains + [domain] * len(t)
    return texts, labels, row_domains


def label_only_targets(
    probs: np.ndarray,
    labels: Sequence[str | None],
    domains: Sequence[str],
    label_only: Sequence[str],
    index: dict[str, int],
) -> None:
    """Set the targets of the label-only domains' rows to their labels, in place: the soft term of those rows
    is then the cross-entropy with their label (unweighted by class), so no teacher's probability reaches
    them; every other row keeps its targets."""
    for row, (label, domain) in enumerate(zip(labels, domains, strict=True)):
        if domain in label_only and label is not None:
            probs[row] = 0.0
            probs[row, index[label]] = 1.0


def _training_rows(config: FinetuneConfig) -> tuple[list[str], list[str | None], list[str]]:
    """Texts, labels (None: an unlabelled row) and domains of the training rows, ``train_limit`` applied."""
    n_files = len(config.train_files)
    file_domains = config.file_domains()
    texts, labelled, domains = labelled_rows(config.train_files, file_domains[:n_files])
    labels = list[str | None](labelled)
    for path, domain in zip(config.unlabelled_files, file_domains[n_files:], strict=True):
        unlabelled = load_unlabelled(path)
        texts, labels = texts + unlabelled, labels + [None] * len(unlabelled)
        domains = domains + [domain] * len(unlabelled)
    if config.train_limit is not None:
        keep = np.random.default_rng(config.seed).permutation(len(texts))[: config.train_limit]
        texts, labels, domains = (
            [texts[i] for i in keep],
            [labels[i] for i in keep],
            [domains[i] for i in keep],
        )
    return texts, labels, domains


def _domain_summary(config: FinetuneConfig, domains: Sequence[str]) -> dict[str, Any] | None:
    """Rows and share of an epoch per domain, as recorded in ``pantau_model.json`` (None: not sampled)."""
    if config.domain_sampling is None:
        return None
    pool = domain_pool(domains, config.domain_sampling.weights, config.seed, 0)
    column = np.asarray(domains)
    return {
        name: {
            "rows": int((column == name).sum()),
            "weight": config.domain_sampling.weights.get(name, 1.0),
            "epoch_share": round(float((column[pool] == name).mean()), 4),
        }
        for name in sorted(set(domains))
    }


@dataclass
class Source:
    """The model directory a run starts from: its description, encoder (fp32), tokenizer and head."""

    meta: dict[str, Any]
    base_meta: dict[str, Any]
    prefix: str
    encoder: BertModel
    tok: Tokenizer
    head: Head

    @classmethod
    def load(cls, model_dir: Path) -> Source:
        meta_path = model_dir / META_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        base_path = model_dir / "base_model.json"
        base_meta = json.loads(base_path.read_text(encoding="utf-8")) if base_path.exists() else {}
        prefix = str(meta.get("prefix", base_meta.get("prefix", "query: ")))
        encoder = load_encoder(model_dir, "fp32")
        tok = load_tokenizer(model_dir)
        hidden = int(encoder.config.hidden_size)
        if (model_dir / HEAD_FILE).exists():
            head = Head.load(model_dir / HEAD_FILE)
        else:  # a bare encoder dir from `pantau model build`: start from a zero head
            head = Head(np.zeros((len(LABELS), hidden)), np.zeros(len(LABELS)))
        return cls(meta, base_meta, prefix, encoder, tok, head)

    def description(self) -> dict[str, Any]:
        """What the written model's ``pantau_model.json`` starts from (its base named, as the source's)."""
        base = {"base": self.base_meta} if self.base_meta and "base" not in self.meta else {}
        return self.meta | base


@dataclass(frozen=True)
class Calibrated:
    """The trained head with its temperature folded in, scored with the weights as stored."""

    backend: Backend
    temperature: float
    head: Head
    valid_before: EvalReport
    """Validation scores before temperature scaling (same macro-F1, other ECE)."""
    valid: EvalReport
    raw_logits: Callable[[Sequence[str]], np.ndarray]
    """Logits before temperature of texts, through the stored encoder and ``backend``."""

    def score(self, texts: Sequence[str], labels: Sequence[str]) -> EvalReport:
        return report_from_proba(softmax(self.raw_logits(texts) / self.temperature), labels)


def calibrate(
    model: Classifier,
    out_dir: Path,
    tok: Tokenizer,
    prefix: str,
    labels: Sequence[str],
    v_texts: Sequence[str],
    v_text: Sequence[str],
    v_domains: Sequence[str],
    *,
    onnx: bool,
    threads: int,
    calibrate_on: str | None,
) -> Calibrated:
    """Fit the temperature on validation with the encoder as written to ``out_dir``, through the backend the
    model ships with (onnx-int8 when ``onnx``, else fp32), each validation domain weighing the same, or
    on ``calibrate_on``'s rows alone.

    Int8 rounding changes the logits' scale (a label-only continuation of v3 calibrated on fp32 had
    validation ECE 0.020 there, 0.070 with onnx-int8), and scores of the in-memory weights would not
    reproduce with `pantau model eval`.
    """
    backend: Backend = "onnx-int8" if onnx else "fp32"
    w = model.head.weight.detach().cpu().double().numpy()
    b = model.head.bias.detach().cpu().double().numpy()
    shipped = load_pooled_encoder(out_dir, backend, threads)

    def raw_logits(texts: Sequence[str]) -> np.ndarray:
        x = embed_texts(shipped, tok, texts, prefix=prefix, max_length=DEFAULT_MAX_LENGTH)[:, 0]
        return np.asarray(x.astype(np.float64) @ w.T + b)

    index = {label: i for i, label in enumerate(labels)}
    va_logits = raw_logits(v_texts)
    y = np.array([index[v] for v in v_text])
    if calibrate_on is None:
        t = fit_temperature(va_logits, y, v_domains)
    else:
        rows = np.array([domain == calibrate_on for domain in v_domains])
        t = fit_temperature(va_logits[rows], y[rows])
    return Calibrated(
        backend=backend,
        temperature=t,
        head=Head(w / t, b / t, tuple(labels)),
        valid_before=report_from_proba(softmax(va_logits), v_text),
        valid=report_from_proba(softmax(va_logits / t), v_text),
        raw_logits=raw_logits,
    )


def unchanged_layers(freeze_layers: int) -> frozenset[EmbeddingLayer]:
    """The embedding layers a run that held ``freeze_layers`` fixed leaves exactly as its source had them
    (with them, the heads that read them)."""
    return frozenset({"topic"}) if freeze_layers >= encoder_module.TOPIC_LAYER else frozenset()


def calibration_record(calibrated: Calibrated, calibrate_on: str | None) -> dict[str, Any]:
    """How the temperature was fitted, as ``pantau_model.json`` records it under ``finetune``."""
    return {
        "temperature": round(calibrated.temperature, 6),
        "calibrated_on": calibrated.backend,
        "temperature_domain": calibrate_on or "every validation domain, weighing the same",
        "temperature_fitted_on": (
            f"validation NLL of the {calibrate_on} validation file(s) alone"
            if calibrate_on
            else "validation NLL, each validation file's domain weighing the same"
        ),
        "valid_ece_before_temperature": round(calibrated.valid_before.ece, 4),
    }


def recorded_metrics(calibrated: Calibrated, test_files: dict[str, Path], console: Console) -> dict[str, Any]:
    """Validation and test scores of the stored weights, as ``pantau_model.json`` records them; each test
    report is printed."""
    metrics = {"valid": metrics_summary(calibrated.valid)}
    for name, path in test_files.items():
        report = calibrated.score(*load_labelled(path))
        print_report(report, console, title=f"{name} ({path.name}, {calibrated.backend})")
        metrics[name] = metrics_summary(report)
    return metrics


def _details(
    c: FinetuneConfig,
    state: TrainState,
    best: dict[str, Any],
    *,
    layers: int,
    steps_per_epoch: int,
    warmup: int,
    teacher_versions: list[str],
    device: str,
    calibrated: Calibrated,
    source_version: str,
    domain_summary: dict[str, Any] | None,
) -> dict[str, Any]:
    """How the model was trained: ``finetune`` in ``pantau_model.json`` (the stored files are added to it)."""
    details: dict[str, Any] = {
        "epochs": c.epochs,
        "epochs_completed": round(state.step / steps_per_epoch, 4),
        "best_epoch": best["epoch"],
        "best_step": best["step"],
        "steps": state.step,
        "steps_per_epoch": steps_per_epoch,
        "max_steps": c.max_steps,
        "lr": c.lr,
        "schedule": f"AdamW, {warmup} warmup steps then {c.schedule} decay",
        "layer_decay": c.layer_decay,
        "weight_decay": WEIGHT_DECAY,
        "batch_size": c.batch_size,
        "max_length": c.max_length,
        "freeze_word_embeddings": c.freeze_embeddings,
        "layers": layers,
        "freeze_layers": c.freeze_layers,
        "teacher": {
            "version": teacher_versions[0],
            "ensemble": teacher_versions,
            "backend": c.teacher_backend,
            "distill_weight": c.distill_weight,
            "anchor_weight": c.anchor_weight,
            "label_only_domains": c.label_only_domains,
        }
        if c.teachers
        else None,
        "class_weighted": c.class_weighted,
        "start_head": state.start_head,
        "seed": c.seed,
        "train_limit": c.train_limit,
        "device": device,
        "best_valid_macro_f1": round(state.best_f1, 4),
        **calibration_record(calibrated, c.calibrate_on),
        "history": state.history,
        "data": {
            "train": [file_info(p) for p in c.train_files],
            "valid": [file_info(p) for p in c.valid_files],
        },
        "source_model": source_version,
    }
    if c.unlabelled_files:
        details["data"]["unlabelled"] = [file_info(p) for p in c.unlabelled_files]
    if domain_summary is not None:
        details["domain_sampling"] = domain_summary
    return details


def finetune_sentiment(config: FinetuneConfig, console: Console) -> dict[str, Any]:
    """Fine-tune encoder + head from ``config.model_in`` and write a ``SentimentModel`` directory to
    ``config.out_dir``.

    The best epoch on validation macro-F1 is kept (a run cut short by ``max_steps`` is scored where it
    stopped); its temperature is fitted on validation with the backend it ships with (onnx-int8 when
    ``onnx``, which also writes that backend's file; else fp32), and the reported metrics come from that
    backend. Returns a summary (also stored as ``finetune`` in ``pantau_model.json``).
    The category and attribution heads are carried over only when they read the topic layer and the layers
    up to it were written unchanged (``--freeze-layers`` at least ``TOPIC_LAYER``); otherwise they were fitted
    on other embeddings and must be retrained (``pipeline.model.heads``). Distillation: see
    :class:`FinetuneConfig`; the last-layer anchor carries far more of the teacher than three
    probabilities, and the topic-layer one keeps topic discovery grouping posts by subject.
    """
    c = config
    device = c.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(c.threads)
    torch.manual_seed(c.seed)

    source = Source.load(c.model_in)
    encoder, tok, prefix, head_in = source.encoder, source.tok, source.prefix, source.head
    labels = head_in.labels
    index = {label: i for i, label in enumerate(labels)}
    truncated = c.layers is not None and c.layers != int(encoder.config.num_hidden_layers)
    n_layers = keep_layers(encoder, c.layers, c.freeze_layers)
    texts, y_text, row_domains = _training_rows(c)
    v_texts, v_text, v_domains = labelled_rows(c.valid_files, [domain_of(p) for p in c.valid_files])
    checkpoints = Checkpoints(c.checkpoint_dir, run_signature(c, n_layers))
    state = TrainState()
    if truncated and not c.teachers and not (c.resume and checkpoints.last.exists()):
        # The source head reads the last of all layers; start from one fitted on the student's own output.
        labelled = cast(list[str], y_text)  # no teacher, so no unlabelled rows
        start = starting_head(encoder, tok, prefix, texts, labelled, v_texts, v_text, c.seed, console)
        head_in = start.head
        state.start_head = {
            "fitted_on_layers": n_layers,
            "valid_macro_f1": round(start.valid_after.macro_f1, 4),
        }
    model = Classifier(encoder, head_in.weight, head_in.bias)
    freeze(encoder, c.freeze_embeddings, c.freeze_layers)
    model.to(device)
    pad_id = int(encoder.config.pad_token_id or 1)

    y = torch.tensor([UNLABELLED if v is None else index[v] for v in y_text], dtype=torch.long)
    train_ids = encode(tok, texts, prefix, c.max_length)
    valid_ids = encode(tok, v_texts, prefix, DEFAULT_MAX_LENGTH)  # scored as SentimentModel will see them
    lengths = np.array([len(i) for i in train_ids])
    distillation: Distillation | None = None
    teacher_versions: list[str] = []
    if c.teachers:
        probs, pairs, teacher_versions = teacher_targets(
            c.teachers,
            texts,
            labels,
            c.checkpoint_dir,
            console,
            backend=c.teacher_backend,
            threads=c.threads,
            anchors=c.anchor_weight > 0,
        )
        label_only_targets(probs, y_text, row_domains, c.label_only_domains, index)
        distillation = Distillation(
            torch.from_numpy(probs).to(device),
            torch.from_numpy(pairs).to(device),
            c.distill_weight,
            c.anchor_weight,
        )

    def batches(epoch: int) -> list[np.ndarray]:
        if c.domain_sampling is None:
            return epoch_batches(lengths, c.batch_size, c.seed, epoch)
        pool = domain_pool(row_domains, c.domain_sampling.weights, c.seed, epoch)
        return epoch_batches(lengths, c.batch_size, c.seed, epoch, pool)

    steps_per_epoch = len(batches(0))
    total_steps = c.epochs * steps_per_epoch
    warmup = max(1, round(c.warmup_ratio * total_steps))
    console.print(
        f"fine-tuning on {device}: {len(texts):,} train / {len(v_texts):,} valid texts, "
        f"{c.epochs} epoch(s) × {steps_per_epoch} steps (batch {c.batch_size}, ≤ {c.max_length} tokens), "
        f"lr {c.lr:g}, layer decay {c.layer_decay}, warmup {warmup} steps"
    )
    domain_summary = _domain_summary(c, row_domains)
    if domain_summary is not None:
        shares = ", ".join(
            f"{name} {d['epoch_share']:.0%} of {d['rows']:,}" for name, d in domain_summary.items()
        )
        console.print(f"sampling balanced by domain (share of an epoch, of rows): {shares}")

    class_weight = balanced_class_weight(y, len(labels)).to(device) if c.class_weighted else None
    optimizer = torch.optim.AdamW(param_groups(model, c.lr, c.layer_decay, WEIGHT_DECAY), lr=c.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, warmup, c.schedule)
    )

    resumed_from: int | None = None
    if c.resume and checkpoints.resume(model, optimizer, scheduler, state, device, console):
        resumed_from = state.step
    else:
        checkpoints.clear()

    loop = TrainingLoop(
        model,
        optimizer,
        scheduler,
        checkpoints,
        state,
        train_ids=train_ids,
        y=y,
        valid_ids=valid_ids,
        valid_labels=v_text,
        batches=batches,
        pad_id=pad_id,
        device=device,
        class_weight=class_weight,
        distillation=distillation,
        checkpoint_every=c.checkpoint_every,
        console=console,
    )
    limit = total_steps if c.max_steps is None else min(c.max_steps, total_steps)
    loop.run(c.epochs, limit, steps_per_epoch)

    best = checkpoints.load_best()
    model.load_state_dict(best["model"], strict=False)
    model.eval()
    stored = write_encoder(
        c.model_in, c.out_dir, encoder, c.storage, c.onnx, console, unchanged_layers(c.freeze_layers)
    )
    # Calibrate and score the weights as stored, through the backend the model ships with: int8 rounding
    # changes the logits' scale (a label-only continuation of v3 calibrated on fp32 had validation ECE 0.020
    # there, 0.070 with onnx-int8), and scores of the in-memory weights would not reproduce with
    # `pantau model eval`.
    calibrated = calibrate(
        model,
        c.out_dir,
        tok,
        prefix,
        labels,
        v_texts,
        v_text,
        v_domains,
        onnx=c.onnx,
        threads=c.threads,
        calibrate_on=c.calibrate_on,
    )
    console.print(
        f"best epoch {best['epoch']:.2f} (step {best['step']}), {calibrated.backend}: valid macro-F1 "
        f"{calibrated.valid.macro_f1:.4f}; temperature {calibrated.temperature:.3f}, "
        f"ECE {calibrated.valid_before.ece:.4f} → {calibrated.valid.ece:.4f}"
    )
    metrics = recorded_metrics(calibrated, c.test_files, console)

    model.cpu()
    details = _details(
        c,
        state,
        best,
        layers=n_layers,
        steps_per_epoch=steps_per_epoch,
        warmup=warmup,
        teacher_versions=teacher_versions,
        device=device,
        calibrated=calibrated,
        source_version=str(source.meta.get("version", c.model_in)),
        domain_summary=domain_summary,
    )
    summary = write_model(
        c.out_dir,
        calibrated.head,
        stored,
        source.description(),
        prefix,
        metrics,
        details,
        console,
    )
    return summary | {
        "resumed_from": resumed_from,
        "losses": state.losses,
        "seconds_per_step": round(loop.step_seconds / loop.run_steps, 3) if loop.run_steps else None,
        "checkpoint": str(checkpoints.last),
    }
