"""The distillation loss over a batch that mixes labelled rows with unlabelled ones (``--unlabelled``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rich.console import Console

from pipeline.model.training.checkpoints import Checkpoints, TrainState
from pipeline.model.training.loop import UNLABELLED, Distillation, TrainingLoop

HIDDEN = 4
LABELS = 3


class TinyClassifier(torch.nn.Module):
    """Token embeddings averaged, normalised, then a linear head: the interface the loop trains."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(20, HIDDEN)
        self.head = torch.nn.Linear(HIDDEN, LABELS)

    def with_embeddings(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = (self.embed(ids) * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        pooled = F.normalize(pooled, dim=-1)
        return self.head(pooled), torch.stack([pooled, pooled], dim=1)


def _loop(
    tmp_path: Path, y: list[int], distill_weight: float = 0.5, anchor_weight: float = 2.0
) -> TrainingLoop:
    n = len(y)
    rng = np.random.default_rng(1)
    probs = torch.from_numpy(rng.dirichlet(np.ones(LABELS), size=n).astype(np.float32))
    pairs = F.normalize(torch.from_numpy(rng.normal(size=(n, 2, HIDDEN)).astype(np.float32)), dim=-1)
    model = TinyClassifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return TrainingLoop(
        model,  # type: ignore[arg-type]
        optimizer,
        torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0),
        Checkpoints(tmp_path, {}),
        TrainState(),
        train_ids=[[1 + i, 2 + i, 3] for i in range(n)],
        y=torch.tensor(y),
        valid_ids=[],
        valid_labels=[],
        batches=lambda epoch: [],
        pad_id=0,
        device="cpu",
        class_weight=None,
        distillation=Distillation(probs, pairs, distill_weight, anchor_weight),
        checkpoint_every=100,
        console=Console(file=io.StringIO()),
    )


def _parts(
    loop: TrainingLoop, idx: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row label loss, per-row soft loss, the batch's anchor drift and its labels, computed here."""
    ids = torch.tensor([loop.train_ids[i] for i in idx])
    logits, pair = loop.model.with_embeddings(ids, torch.ones_like(ids))
    d = loop.distillation
    assert d is not None
    rows = torch.from_numpy(idx)
    y = loop.y[rows]
    soft = -(d.probs[rows] * F.log_softmax(logits, dim=-1)).sum(-1)
    hard = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
    drift = (1.0 - (pair * d.pairs[rows]).sum(-1)).mean()
    return hard, soft, drift, y


def test_a_labelled_batch_weighs_label_and_teacher_as_before(tmp_path: Path) -> None:
    loop = _loop(tmp_path, [0, 1, 2, 1])
    idx = np.arange(4)
    hard, soft, drift, _ = _parts(loop, idx)
    expected = 0.5 * hard.mean() + 0.5 * soft.mean() + 2.0 * drift
    assert loop.loss(idx).item() == pytest.approx(expected.item(), rel=1e-6)


def test_unlabelled_rows_learn_from_the_teacher_alone(tmp_path: Path) -> None:
    loop = _loop(tmp_path, [0, UNLABELLED, 2, UNLABELLED], distill_weight=0.25)
    idx = np.arange(4)
    hard, soft, drift, y = _parts(loop, idx)
    labelled = y != UNLABELLED
    expected = (
        0.5 * (0.75 * hard[labelled].mean() + 0.25 * soft[labelled].mean())
        + 0.5 * soft[~labelled].mean()
        + 2.0 * drift
    )
    assert loop.loss(idx).item() == pytest.approx(expected.item(), rel=1e-6)
    only = np.array([1, 3])
    _, soft, drift, _ = _parts(loop, only)
    assert loop.loss(only).item() == pytest.approx((soft.mean() + 2.0 * drift).item(), rel=1e-6)


def test_a_step_on_unlabelled_rows_moves_the_model_towards_the_teacher(tmp_path: Path) -> None:
    loop = _loop(tmp_path, [UNLABELLED] * 4, anchor_weight=0.0)
    idx = np.arange(4)
    before = loop.loss(idx).item()
    for _ in range(5):
        loop.step(idx)
    assert np.isfinite(loop.state.losses).all()
    assert loop.loss(idx).item() < before
