"""Resumable checkpoints: an epoch takes tens of minutes on two CPU cores, so a run saves often and a
restarted one continues at the exact step (same batches, dropout masks, optimizer and schedule state).

``last.pt`` holds everything a resume needs, under the run's signature (data, source model, the
hyper-parameters that shape the steps): a checkpoint of another run is refused, not silently continued.
``best.pt`` holds the trainable weights of the best validation score so far.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pipeline.model.encoder import HF_FILE
from pipeline.model.packed import PACKED_FILE
from pipeline.model.sentiment import HEAD_FILE
from pipeline.model.training.classifier import Classifier, trainable_state
from pipeline.model.training.config import FinetuneConfig

if TYPE_CHECKING:
    from rich.console import Console

CHECKPOINT_FILE = "last.pt"
BEST_FILE = "best.pt"
CHECKPOINT_FORMAT = 1

__all__ = [
    "BEST_FILE",
    "CHECKPOINT_FILE",
    "CHECKPOINT_FORMAT",
    "Checkpoints",
    "TrainState",
    "atomic_save",
    "file_sha256",
    "run_signature",
    "weights_digest",
]


def atomic_save(obj: dict[str, Any], path: Path) -> None:
    """Write then rename: a run killed mid-write leaves the previous checkpoint intact."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def weights_digest(model_dir: Path) -> str:
    """Short digest of a model directory's encoder weights and head: names a source model or a teacher."""
    name = PACKED_FILE if (model_dir / PACKED_FILE).exists() else HF_FILE
    head = model_dir / HEAD_FILE
    return file_sha256(model_dir / name)[:16] + (file_sha256(head)[:16] if head.exists() else "")


def run_signature(config: FinetuneConfig, layers: int) -> dict[str, Any]:
    """What makes two runs the same run: a checkpoint resumes only under an equal signature.

    Domain sampling and unlabelled files enter only when set, so checkpoints written before they existed
    still resume.
    """
    signature: dict[str, Any] = {
        "source": weights_digest(config.model_in),
        "train": [file_sha256(p)[:16] for p in config.train_files],
        "valid": [file_sha256(p)[:16] for p in config.valid_files],
        "train_limit": config.train_limit if config.train_limit is not None else -1,
        "epochs": config.epochs,
        "lr": config.lr,
        "batch_size": config.batch_size,
        "max_length": config.max_length,
        "freeze_embeddings": config.freeze_embeddings,
        "layer_decay": config.layer_decay,
        "warmup_ratio": config.warmup_ratio,
        "schedule": config.schedule,
        "class_weighted": config.class_weighted,
        "seed": config.seed,
        "layers": layers,
        "freeze_layers": config.freeze_layers,
        "teacher": [
            [weights_digest(t) for t in config.teachers],
            config.teacher_backend,
            config.distill_weight,
            config.anchor_weight,
        ]
        if config.teachers
        else None,
    }
    if config.unlabelled_files:
        signature["unlabelled"] = [file_sha256(p)[:16] for p in config.unlabelled_files]
    if config.label_only_domains:
        signature["label_only_domains"] = sorted(set(config.label_only_domains))
    if config.domain_sampling is not None:
        signature["domain_sampling"] = {
            "domains": config.file_domains(),
            "weights": dict(sorted(config.domain_sampling.weights.items())),
        }
    return signature


@dataclass
class TrainState:
    """Where a run stands; saved in ``last.pt`` with the weights and optimizer."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_f1: float = -1.0
    best_epoch: float = -1.0
    losses: list[float] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    start_head: dict[str, Any] | None = None
    """How the head was started when not from the source model's (``None``: the source's)."""


class Checkpoints:
    """``last.pt`` and ``best.pt`` of one run in ``directory``."""

    def __init__(self, directory: Path, signature: dict[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.last = directory / CHECKPOINT_FILE
        self.best = directory / BEST_FILE
        self.signature = signature

    def resume(
        self,
        model: Classifier,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        state: TrainState,
        device: str,
        console: Console,
    ) -> bool:
        """Load ``last.pt`` into the model, optimizer, scheduler, RNG and ``state``; False when there is none.
        Raises ``ValueError`` for a checkpoint of another run."""
        if not self.last.exists():
            return False
        ckpt = torch.load(self.last, map_location="cpu", weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("signature") != self.signature:
            raise ValueError(
                f"{self.last} belongs to a different run (data, source model or hyper-parameters differ): "
                "pass --no-resume or another --checkpoint-dir"
            )
        missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
        if unexpected or any(n in missing for n, p in model.named_parameters() if p.requires_grad):
            raise ValueError(f"{self.last}: parameters do not match: {missing} {unexpected}")
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"])
        if device.startswith("cuda") and ckpt.get("cuda_rng"):
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        state.step, state.epoch = int(ckpt["step"]), int(ckpt["epoch"])
        state.step_in_epoch = int(ckpt["step_in_epoch"])
        state.best_f1, state.best_epoch = float(ckpt["best_f1"]), float(ckpt["best_epoch"])
        state.losses, state.history = list(ckpt["losses"]), list(ckpt["history"])
        state.start_head = ckpt.get("start_head")
        console.print(
            f"resumed from {self.last} at step {state.step} (epoch {state.epoch + 1}, batch "
            f"{state.step_in_epoch})"
        )
        return True

    def clear(self) -> None:
        """Start over: an old last.pt left here would be resumed by the next run, with no best.pt for it."""
        self.last.unlink(missing_ok=True)
        self.best.unlink(missing_ok=True)

    def save(
        self,
        model: Classifier,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        state: TrainState,
        device: str,
    ) -> None:
        atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "signature": self.signature,
                "model": trainable_state(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if device.startswith("cuda") else [],
                "step": state.step,
                "epoch": state.epoch,
                "step_in_epoch": state.step_in_epoch,
                "best_f1": state.best_f1,
                "best_epoch": state.best_epoch,
                "losses": state.losses,
                "history": state.history,
                "start_head": state.start_head,
            },
            self.last,
        )

    def save_best(self, model: Classifier, epoch: float, step: int) -> None:
        atomic_save({"model": trainable_state(model), "epoch": epoch, "step": step}, self.best)

    def load_best(self) -> dict[str, Any]:
        """``model`` (trainable weights), ``epoch`` and ``step`` of the best validation score."""
        best: dict[str, Any] = torch.load(self.best, map_location="cpu", weights_only=True)
        return best
