"""One model from the mean of several fine-tunes' trained weights (a weight soup).

Fine-tunes that start from the same model and hold the same lower layers fixed differ only in the layers
above and the head. Averaging those (Wortsman et al. 2022, "Model soups") gives a model of the same size and
speed; separate draws here each traded one domain for another, and a mean of two can keep both strengths.
Which runs to mix is chosen on validation (the model card has the rule); this module only mixes, writes and
calibrates, with the trainer's own storage and temperature fit, so the result loads and scores like any
trained model. One run alone is written the same way with another model's category and attribution heads
(``heads_from``): how a fine-tune of a base whose heads were refitted later gets the heads in use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.model import encoder as encoder_module
from pipeline.model.data import file_info
from pipeline.model.heads import HEAD_SECTIONS, settle_heads
from pipeline.model.layers import EmbeddingLayer
from pipeline.model.sentiment import META_FILE
from pipeline.model.training.checkpoints import BEST_FILE, CHECKPOINT_FILE, CHECKPOINT_FORMAT, weights_digest
from pipeline.model.training.classifier import Classifier, freeze, keep_layers
from pipeline.model.training.config import Storage, check_calibration_domain, domain_of
from pipeline.model.training.finetune import (
    Source,
    calibrate,
    calibration_record,
    labelled_rows,
    recorded_metrics,
    unchanged_layers,
)
from pipeline.model.training.storage import same_weights, weights_below, write_encoder, write_model

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Ingredient", "SoupConfig", "SoupError", "load_ingredient", "make_soup", "mean_weights"]


class SoupError(ValueError):
    """The runs cannot be mixed (another start, other trained layers) or a named directory does not fit."""


class SoupConfig(BaseModel):
    """Every choice of a soup, validated before any weights are read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: Path
    """The model every run started from (``--base`` of their ``pantau model train``): its frozen layers,
    tokenizer and description are the soup's."""
    checkpoint_dirs: list[Path] = Field(min_length=1)
    """Each run's ``--checkpoint-dir``: its ``best.pt`` holds the weights of the run's best epoch so far. One
    run only with ``heads_from``: that run written again with those heads (a fine-tune of a base whose heads
    were refitted after it)."""
    out_dir: Path
    valid_files: list[Path] = Field(min_length=1)
    """Labelled files the temperature is fitted on (each domain weighing the same, or ``calibrate_on``)."""
    test_files: dict[str, Path] = Field(default_factory=dict)
    """Scored and recorded after calibration, as a trained model's are."""
    calibrate_on: str | None = None
    heads_from: Path | None = None
    """A model directory whose category and attribution heads to carry instead of the base's (heads refitted
    after the runs); its layers up to the topic layer must be stored exactly as the base's."""
    storage: Storage = "int8"
    onnx: bool = True
    threads: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _distinct(self) -> SoupConfig:
        if len(self.checkpoint_dirs) == 1 and self.heads_from is None:
            raise ValueError(
                "one run averages to itself: name at least 2 runs, or one run with --heads-from to write "
                "it with those heads"
            )
        resolved = [p.resolve() for p in self.checkpoint_dirs]
        if len(set(resolved)) != len(resolved):
            raise ValueError("a checkpoint directory is named twice: each run counts once in the mean")
        read = [self.base] if self.heads_from is None else [self.base, self.heads_from]
        if self.out_dir.resolve() in {p.resolve() for p in read}:
            raise ValueError("--out must be another directory than --base and --heads-from, which are read")
        check_calibration_domain(self.calibrate_on, self.valid_files)
        return self


@dataclass(frozen=True)
class Ingredient:
    """One run: where its checkpoints are, what made it (its run signature) and the weights it kept."""

    directory: Path
    signature: dict[str, Any]
    weights: dict[str, torch.Tensor]
    best_epoch: float
    best_step: int

    def description(self) -> dict[str, Any]:
        """What ``pantau_model.json`` records of the run (digests of its data and teachers, not copies)."""
        sig = self.signature
        return {
            "checkpoint_dir": str(self.directory),
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
            "seed": sig.get("seed"),
            "epochs": sig.get("epochs"),
            "lr": sig.get("lr"),
            "train": sig.get("train"),
            "teacher": sig.get("teacher"),
            "unlabelled": sig.get("unlabelled"),
            "label_only_domains": sig.get("label_only_domains"),
            "domain_sampling": sig.get("domain_sampling"),
        }


MATCHING = ("source", "layers", "freeze_layers", "freeze_embeddings")
"""Run-signature entries that decide which weights a run trained and from where: equal in every ingredient."""


def load_ingredient(directory: Path) -> Ingredient:
    """The run in ``directory``: ``last.pt`` names it, ``best.pt`` holds the weights it kept."""
    last, best = directory / CHECKPOINT_FILE, directory / BEST_FILE
    for path in (last, best):
        if not path.exists():
            raise SoupError(f"{path} is missing: not the --checkpoint-dir of a `pantau model train` run")
    try:
        run = torch.load(last, map_location="cpu", weights_only=True)
        kept = torch.load(best, map_location="cpu", weights_only=True)
        weights, epoch, step = kept["model"], float(kept["epoch"]), int(kept["step"])
    except (RuntimeError, KeyError, TypeError, ValueError, OSError) as exc:
        raise SoupError(f"{directory}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    if run.get("format") != CHECKPOINT_FORMAT or not isinstance(run.get("signature"), dict):
        raise SoupError(f"{last}: not a checkpoint of this version of `pantau model train`")
    if not all(key in run["signature"] for key in MATCHING):
        raise SoupError(f"{last}: its run signature lacks {', '.join(MATCHING)}")
    return Ingredient(directory, run["signature"], weights, epoch, step)


def _check_mixable(ingredients: list[Ingredient], base: Path) -> None:
    """Same start, same trained layers, same tensors: otherwise a mean of the weights means nothing."""
    first = ingredients[0]
    source = weights_digest(base)
    for ing in ingredients:
        if ing.signature["source"] != source:
            raise SoupError(
                f"{ing.directory} started from another model than --base {base} "
                f"(source digest {ing.signature['source']}, --base {source})"
            )
        for key in MATCHING[1:]:
            if ing.signature[key] != first.signature[key]:
                raise SoupError(
                    f"{ing.directory} ran with {key} = {ing.signature[key]}, {first.directory} with "
                    f"{first.signature[key]}: runs that trained other weights cannot be averaged"
                )
        differ = sorted(
            set(ing.weights) ^ set(first.weights)
            | {
                n
                for n in set(ing.weights) & set(first.weights)
                if ing.weights[n].shape != first.weights[n].shape
            }
        )
        if differ:
            raise SoupError(
                f"{ing.directory}: trained tensors differ from {first.directory}'s: {', '.join(differ)}"
            )


def mean_weights(weights: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of each tensor, taken in float64."""
    return {
        name: torch.stack([w[name].double() for w in weights]).mean(dim=0).to(weights[0][name].dtype)
        for name in weights[0]
    }


def _heads_description(
    config: SoupConfig, source: Source, unchanged: frozenset[EmbeddingLayer]
) -> dict[str, Any]:
    """The base's description, with the category and attribution records of ``heads_from`` when given; a
    ``heads_from`` whose heads would read other embeddings is refused before anything is written."""
    meta = source.description()
    if config.heads_from is None:
        return meta
    if not unchanged:
        raise SoupError(
            "--heads-from: the runs trained the topic layer, so no head fitted on it can be carried"
        )
    below = encoder_module.TOPIC_LAYER
    try:
        same = same_weights(weights_below(config.heads_from, below), weights_below(config.base, below))
        other = json.loads((config.heads_from / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SoupError(f"--heads-from {config.heads_from}: not a model directory ({exc})") from None
    if not same:
        raise SoupError(
            f"--heads-from {config.heads_from}: its layers below {below} are not stored as --base's, so its "
            "heads read other embeddings"
        )
    return {k: v for k, v in meta.items() if k not in HEAD_SECTIONS.values()} | {
        k: other[k] for k in HEAD_SECTIONS.values() if k in other
    }


def make_soup(config: SoupConfig, console: Console) -> dict[str, Any]:
    """Average the runs' kept weights into the base, write the model with the trainer's storage, fit its
    temperature on validation and record where every part came from. Returns the ``finetune`` record."""
    c = config
    torch.set_num_threads(c.threads)
    ingredients = [load_ingredient(d) for d in c.checkpoint_dirs]
    _check_mixable(ingredients, c.base)
    signature = ingredients[0].signature
    layers, frozen = int(signature["layers"]), int(signature["freeze_layers"])

    source = Source.load(c.base)
    keep_layers(source.encoder, layers, frozen)
    model = Classifier(source.encoder, source.head.weight, source.head.bias)
    freeze(source.encoder, bool(signature["freeze_embeddings"]), frozen)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    if trained != set(ingredients[0].weights):
        raise SoupError(
            "the runs' weights do not fit --base: "
            f"{', '.join(sorted(trained ^ set(ingredients[0].weights)))} trained in one and not the other"
        )
    model.load_state_dict(mean_weights([i.weights for i in ingredients]), strict=False)
    model.eval()
    what = f"mean of {len(ingredients)} runs' weights" if len(ingredients) > 1 else "one run's weights"
    console.print(f"{what} (layers {frozen}–{layers - 1} and the head)")

    unchanged = unchanged_layers(frozen)
    meta_in = _heads_description(c, source, unchanged)
    carry = unchanged if c.heads_from is None else frozenset()  # heads_from's are carried below instead
    stored = write_encoder(c.base, c.out_dir, source.encoder, c.storage, c.onnx, console, carry)
    if c.heads_from is not None:
        below = encoder_module.TOPIC_LAYER
        if not same_weights(weights_below(c.heads_from, below), weights_below(c.out_dir, below)):
            raise SoupError(f"the soup's stored layers below {below} differ from --base's ({c.storage})")
        stored["heads_carried"] = settle_heads(c.heads_from, c.out_dir, unchanged, console)

    v_texts, v_labels, v_domains = labelled_rows(c.valid_files, [domain_of(p) for p in c.valid_files])
    calibrated = calibrate(
        model,
        c.out_dir,
        source.tok,
        source.prefix,
        source.head.labels,
        v_texts,
        v_labels,
        v_domains,
        onnx=c.onnx,
        threads=c.threads,
        calibrate_on=c.calibrate_on,
    )
    console.print(
        f"{calibrated.backend}: valid macro-F1 {calibrated.valid.macro_f1:.4f}; temperature "
        f"{calibrated.temperature:.3f}, ECE {calibrated.valid_before.ece:.4f} → {calibrated.valid.ece:.4f}"
    )
    details: dict[str, Any] = {
        "soup": {
            "method": "uniform mean of each run's best.pt (trained layers and head, float32), then stored"
            if len(ingredients) > 1
            else "the run's best.pt (trained layers and head, float32), stored with heads_from's heads",
            "ingredients": [i.description() for i in ingredients],
        },
        "layers": layers,
        "freeze_layers": frozen,
        **calibration_record(calibrated, c.calibrate_on),
        "data": {"valid": [file_info(p) for p in c.valid_files]},  # training data: each ingredient's digests
        "source_model": str(source.meta.get("version", c.base)),
        "heads_from": str(c.heads_from) if c.heads_from is not None else None,
    }
    metrics = recorded_metrics(calibrated, c.test_files, console)
    return write_model(c.out_dir, calibrated.head, stored, meta_in, source.prefix, metrics, details, console)
