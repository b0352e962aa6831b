"""The training steps: loss (labels, plus the teachers' targets when distilling), update, checkpoints, and
validation scoring at each epoch's end (or where ``max_steps`` stopped the run)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.model.evaluate import report_from_proba
from pipeline.model.training.batching import collate
from pipeline.model.training.checkpoints import Checkpoints, TrainState
from pipeline.model.training.classifier import Classifier, predict_logits, softmax
from pipeline.model.training.progress import training_progress

if TYPE_CHECKING:
    from rich.console import Console

WEIGHT_DECAY = 0.01
CLIP_NORM = 1.0

UNLABELLED = -100
"""The label index of a row that trains on its teachers' targets alone (``unlabelled_files``)."""

__all__ = ["CLIP_NORM", "UNLABELLED", "WEIGHT_DECAY", "Distillation", "TrainingLoop"]


@dataclass(frozen=True)
class Distillation:
    """Per-row teacher targets (``targets.teacher_targets``) and how much each term weighs."""

    probs: torch.Tensor
    pairs: torch.Tensor
    distill_weight: float
    anchor_weight: float


class TrainingLoop:
    """Runs the steps of one fine-tuning run from ``state`` (fresh or resumed) and keeps ``state`` current.

    ``batches(epoch)`` gives the epoch's batches of training rows; it must be a pure function of the epoch
    so that a resumed run skips exactly the batches it already trained on.
    """

    def __init__(
        self,
        model: Classifier,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        checkpoints: Checkpoints,
        state: TrainState,
        *,
        train_ids: list[list[int]],
        y: torch.Tensor,
        valid_ids: list[list[int]],
        valid_labels: list[str],
        batches: Callable[[int], list[np.ndarray]],
        pad_id: int,
        device: str,
        class_weight: torch.Tensor | None,
        distillation: Distillation | None,
        checkpoint_every: int,
        console: Console,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.checkpoints, self.state = checkpoints, state
        self.train_ids, self.y = train_ids, y
        self.valid_ids, self.valid_labels = valid_ids, valid_labels
        self.batches, self.pad_id, self.device = batches, pad_id, device
        self.class_weight, self.distillation = class_weight, distillation
        self.checkpoint_every, self.console = checkpoint_every, console
        self.saved_at = state.step
        self.step_seconds = 0.0
        """Forward + backward + update only: what an epoch costs per step."""
        self.run_steps = 0
        """Steps this process ran (not those a resumed checkpoint had done)."""

    def checkpoint(self) -> None:
        self.saved_at = self.state.step
        self.checkpoints.save(self.model, self.optimizer, self.scheduler, self.state, self.device)

    def score(self, at_epoch: float) -> None:
        """Validation macro-F1 into the history; the best weights so far into ``best.pt``."""
        state = self.state
        logits = predict_logits(self.model, self.valid_ids, self.pad_id, self.device)
        f1 = report_from_proba(softmax(logits), self.valid_labels).macro_f1
        state.history.append(
            {"epoch": round(at_epoch, 4), "step": state.step, "valid_macro_f1": round(f1, 4)}
        )
        self.console.print(f"epoch {at_epoch:.2f} (step {state.step}): valid macro-F1 {f1:.4f}")
        if f1 > state.best_f1 or not self.checkpoints.best.exists():  # best_f1 may outlive its best.pt
            state.best_f1, state.best_epoch = f1, at_epoch
            self.checkpoints.save_best(self.model, at_epoch, state.step)

    def loss(self, idx: np.ndarray) -> torch.Tensor:
        """The loss of one batch of training rows.

        Distilling, a labelled row weighs its label against its teachers' targets (``distill_weight``); an
        unlabelled row has only the targets. Each part is averaged over its own rows and weighed by their
        share of the batch, so a batch without unlabelled rows scores as it did before they existed.
        """
        ids, mask = collate(self.train_ids, idx.tolist(), self.pad_id, self.device)
        rows = torch.from_numpy(idx)
        y = self.y[rows].to(self.device)
        d = self.distillation
        if d is None:
            return F.cross_entropy(self.model(ids, mask), y, weight=self.class_weight)
        logits, pair = self.model.with_embeddings(ids, mask)
        soft_rows = -(d.probs[rows] * F.log_softmax(logits, dim=-1)).sum(-1)
        labelled = y != UNLABELLED
        share = labelled.float().mean()
        loss = logits.new_zeros(())  # 0 + x is x exactly: a labelled-only batch keeps its old loss
        if labelled.any():
            hard = F.cross_entropy(logits[labelled], y[labelled], weight=self.class_weight)
            soft = soft_rows[labelled].mean()
            loss = loss + share * ((1 - d.distill_weight) * hard + d.distill_weight * soft)
        if not labelled.all():
            loss = loss + (1 - share) * soft_rows[~labelled].mean()
        if d.anchor_weight:  # 0 for a teacher of another lineage, whose embeddings need not be comparable
            drift = (1.0 - (pair * d.pairs[rows]).sum(-1)).mean()  # both L2-normalised
            loss = loss + d.anchor_weight * drift
        return loss

    def step(self, idx: np.ndarray) -> None:
        started = time.perf_counter()
        loss = self.loss(idx)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP_NORM)
        self.optimizer.step()
        self.scheduler.step()
        self.step_seconds += time.perf_counter() - started
        self.state.step, self.state.step_in_epoch = self.state.step + 1, self.state.step_in_epoch + 1
        self.run_steps += 1
        self.state.losses.append(round(float(loss.item()), 6))

    def run(self, epochs: int, limit: int, steps_per_epoch: int) -> None:
        """Train until ``epochs`` are done or ``limit`` steps in all; leave a scored best and a checkpoint."""
        state = self.state
        self.model.train()
        with training_progress(self.console) as progress:
            task = progress.add_task(
                "fine-tuning",
                total=limit,
                completed=min(state.step, limit),
                loss=state.losses[-1] if state.losses else 0.0,
                lr=0.0,
            )
            while state.epoch < epochs and state.step < limit:
                batches = self.batches(state.epoch)
                while state.step_in_epoch < len(batches) and state.step < limit:
                    self.step(batches[state.step_in_epoch])
                    progress.update(
                        task, advance=1, loss=state.losses[-1], lr=self.scheduler.get_last_lr()[0]
                    )
                    if state.step % self.checkpoint_every == 0:
                        self.checkpoint()
                if state.step_in_epoch == len(batches):
                    state.epoch, state.step_in_epoch = state.epoch + 1, 0
                    self.score(float(state.epoch))
                    self.checkpoint()
        stopped_unscored = state.step_in_epoch > 0 and all(h["step"] != state.step for h in state.history)
        if not self.checkpoints.best.exists() or stopped_unscored:
            self.score(state.epoch + state.step_in_epoch / steps_per_epoch)  # stopped by max_steps
            self.checkpoint()
        elif self.run_steps and self.saved_at != state.step:
            self.checkpoint()
