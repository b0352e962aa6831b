"""Distillation targets: what the teachers say about each training text, computed once and cached."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.model.encoder import Backend
from pipeline.model.training.checkpoints import weights_digest
from pipeline.model.training.progress import training_progress

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["teacher_pass", "teacher_targets"]


def teacher_targets(
    teacher_dirs: Sequence[Path],
    texts: Sequence[str],
    labels: Sequence[str],
    cache_dir: Path,
    console: Console,
    *,
    backend: Backend,
    threads: int,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Soft targets and anchors for ``texts``: the mean of the teachers' calibrated probabilities (in
    ``labels`` order) and the first teacher's pooled pairs (last layer, topic layer; ``(n, 2, hidden)``).

    Averaging several teachers gives softer, better-ranked targets than any one of them; the anchors come
    from one teacher only because the student must stay in that teacher's embedding space (its topic layer
    and head). Returns the teacher versions too.
    """
    if not teacher_dirs:
        raise ValueError("at least one teacher is needed")
    probs: list[np.ndarray] = []
    pairs: np.ndarray | None = None
    versions: list[str] = []
    for teacher_dir in teacher_dirs:
        p, pair, version = teacher_pass(
            teacher_dir, texts, labels, cache_dir, console, backend=backend, threads=threads
        )
        probs.append(p)
        pairs = pair if pairs is None else pairs
        versions.append(version)
    assert pairs is not None
    return np.stack(probs).mean(axis=0, dtype=np.float32), pairs, versions


def teacher_pass(
    teacher_dir: Path,
    texts: Sequence[str],
    labels: Sequence[str],
    cache_dir: Path,
    console: Console,
    *,
    backend: Backend,
    threads: int,
) -> tuple[np.ndarray, np.ndarray, str]:
    """One teacher's calibrated probabilities (``labels`` order), pooled pairs and version.

    A pass over the training set takes minutes on two cores, so it is cached in ``cache_dir`` under a key of
    teacher weights, backend, prefix and texts; a resumed run reuses it.
    """
    from pipeline.model.sentiment import SentimentModel

    teacher = SentimentModel.load(teacher_dir, backend=backend, threads=threads)
    # "per-row": targets cached while int8 still encoded whole batches at once are not reused
    key = hashlib.sha256(f"{weights_digest(teacher_dir)}|{backend}|{teacher.prefix}|per-row".encode())
    for text in texts:
        key.update(text.encode("utf-8") + b"\0")
    path = cache_dir / f"teacher-{key.hexdigest()[:16]}.npz"
    if path.exists():
        cached = np.load(path)
        if str(cached["key"]) == key.hexdigest():
            return cached["probs"], cached["pairs"], teacher.version
    with training_progress(console) as progress:
        task = progress.add_task(f"teacher {teacher.version} ({backend})", total=len(texts), loss=0.0, lr=0.0)
        last, topic = teacher.embed_with_topics(texts, progress=lambda n: progress.update(task, advance=n))
    order = [list(teacher.head.labels).index(lab) for lab in labels]
    probs = teacher.head.probabilities(last)[:, order].astype(np.float32)
    pairs = np.ascontiguousarray(np.stack([last, topic], axis=1), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, key=key.hexdigest(), probs=probs, pairs=pairs)
    os.replace(tmp, path)
    return probs, pairs, teacher.version
