"""Distillation targets: what the teachers say about each training text, computed once and cached."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.model.encoder import Backend
from pipeline.model.training.checkpoints import weights_digest
from pipeline.model.training.progress import training_progress

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["teacher_pass", "teacher_targets", "text_digests"]


def teacher_targets(
    teacher_dirs: Sequence[Path],
    texts: Sequence[str],
    labels: Sequence[str],
    cache_dir: Path,
    console: Console,
    *,
    backend: Backend,
    threads: int,
    anchors: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Soft targets and anchors for ``texts``: the mean of the teachers' calibrated probabilities (in
    ``labels`` order) and the first teacher's pooled pairs (last layer, topic layer; ``(n, 2, hidden)``;
    ``(n, 0, 0)`` without ``anchors``, when the anchor weight is 0).

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
            teacher_dir,
            texts,
            labels,
            cache_dir,
            console,
            backend=backend,
            threads=threads,
            anchors=anchors and pairs is None,
        )
        probs.append(p)
        pairs = pair if pairs is None else pairs
        versions.append(version)
    assert pairs is not None
    return np.stack(probs).mean(axis=0, dtype=np.float32), pairs, versions


def text_digests(texts: Sequence[str]) -> np.ndarray:
    """What the cache knows a text by."""
    return np.array([hashlib.sha256(t.encode("utf-8")).hexdigest()[:32] for t in texts], dtype="U32")


def _read_cache(
    path: Path, key: str, n_labels: int, hidden: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Digests, probabilities and pairs (None: not kept) of a cache file; an empty cache when there is
    none, or it is another teacher's, unreadable or inconsistent (then it is rewritten from scratch)."""
    empty = (text_digests([]), np.zeros((0, n_labels), dtype=np.float32), None)
    if not path.exists():
        return empty
    try:
        with np.load(path) as cached:
            if str(cached["key"]) != key:
                return empty
            known, probs = cached["digests"], cached["probs"]
            pairs = cached["pairs"] if "pairs" in cached.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return empty
    rows = len(known)
    if probs.shape != (rows, n_labels) or (pairs is not None and pairs.shape != (rows, 2, hidden)):
        return empty
    return known, probs, pairs


def teacher_pass(
    teacher_dir: Path,
    texts: Sequence[str],
    labels: Sequence[str],
    cache_dir: Path,
    console: Console,
    *,
    backend: Backend,
    threads: int,
    anchors: bool = True,
) -> tuple[np.ndarray, np.ndarray, str]:
    """One teacher's calibrated probabilities (``labels`` order), pooled pairs (empty without ``anchors``)
    and version.

    A pass over the training set takes minutes on two cores, so what the teacher said is cached in
    ``cache_dir`` per text, under a key of teacher weights, backend and prefix: a resumed run, or a run that
    adds files to the texts of an earlier one, encodes only the texts not seen yet. The pooled pairs (3 KB
    per text) are kept only once a run anchors to them.
    """
    from pipeline.model.sentiment import SentimentModel

    teacher = SentimentModel.load(teacher_dir, backend=backend, threads=threads)
    # "per-row": targets cached while int8 still encoded whole batches at once are not reused
    key = hashlib.sha256(f"{weights_digest(teacher_dir)}|{backend}|{teacher.prefix}|per-row|by-text".encode())
    path = cache_dir / f"teacher-{key.hexdigest()[:16]}.npz"
    hidden = teacher.encoder.hidden_size
    known, probs, pairs = _read_cache(path, key.hexdigest(), len(teacher.head.labels), hidden)
    if anchors and pairs is None:
        # pairs wanted and never kept: every text is encoded again (the cache restarts with this run's)
        known, probs = text_digests([]), probs[:0]
        pairs = np.zeros((0, 2, hidden), dtype=np.float32)

    digests = text_digests(texts)
    index = {d: i for i, d in enumerate(known.tolist())}
    todo = list(dict.fromkeys(d for d in digests.tolist() if d not in index))
    if todo:
        by_digest = {d: t for t, d in zip(texts, digests.tolist(), strict=True)}
        with training_progress(console) as progress:
            task = progress.add_task(
                f"teacher {teacher.version} ({backend})", total=len(todo), loss=0.0, lr=0.0
            )
            last, topic = teacher.embed_with_topics(
                [by_digest[d] for d in todo], progress=lambda n: progress.update(task, advance=n)
            )
        known = np.concatenate([known, np.array(todo, dtype="U32")])
        probs = np.concatenate([probs, teacher.head.probabilities(last).astype(np.float32)])
        if pairs is not None:
            pairs = np.concatenate([pairs, np.stack([last, topic], axis=1).astype(np.float32)])
        index = {d: i for i, d in enumerate(known.tolist())}
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        if pairs is None:
            np.savez(tmp, key=key.hexdigest(), digests=known, probs=probs)
        else:
            np.savez(tmp, key=key.hexdigest(), digests=known, probs=probs, pairs=pairs)
        os.replace(tmp, path)

    rows = np.array([index[d] for d in digests.tolist()], dtype=np.int64)
    order = [list(teacher.head.labels).index(lab) for lab in labels]
    out_probs = np.ascontiguousarray(probs[rows][:, order], dtype=np.float32)
    if anchors:
        assert pairs is not None
        return out_probs, np.ascontiguousarray(pairs[rows], dtype=np.float32), teacher.version
    return out_probs, np.zeros((len(texts), 0, 0), dtype=np.float32), teacher.version
