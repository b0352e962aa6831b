"""Threshold clustering of a window of posts on a hybrid (sentence embedding + lexical) similarity.

Why hybrid: on short informal Indonesian, mE5-small puts unrelated complaints at cosine 0.85 and members
of one story at 0.88 on average (measured on :mod:`pipeline.bench.synthetic`), too close to cut; the
shared content words of a story ("banjir", "lebak", "rangkasbitung") separate it. Similarity is
``alpha · cos(centred embeddings) + (1 - alpha) · cos(TF-IDF rows)``.

Why this shape, at 10k–100k posts: average-linkage runs only inside chunks of ``chunk_size`` posts to
*seed* groups (exact for a small window), so cost is linear in the window; the seeds then become centroids
that every post is assigned to (one matrix product per chunk) and that are re-estimated and merged a few
times, like a thresholded k-means. A story that a chunk boundary splits is rejoined by the centroid step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform


def centre(emb: np.ndarray, shrink: float = 100.0) -> np.ndarray:
    """Subtract the window mean (shrunk towards 0 for small windows), then re-normalise.

    mE5 vectors share a large common direction; removing it spreads cosines over [-1, 1]. Shrinking by
    ``n / (n + shrink)`` stops a tiny window (one story only) from cancelling its own story.
    """
    n = len(emb)
    if n == 0:
        return emb
    mu = emb.mean(axis=0) * (n / (n + shrink))
    out = emb - mu
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(out / norms, dtype=np.float32)


def centre_registers(emb: np.ndarray, registers: Sequence[str], skip: str, shrink: float) -> np.ndarray:
    """Centre the posts of each register but ``skip`` on their own mean (shrunk), then re-normalise.

    The encoder puts posts in one dialect close together whatever they are about: Sundanese complaints
    about five services formed one topic ("deui · kudu · poe"). Removing each dialect's mean direction
    leaves what the posts are about; shrinking by ``n / (n + shrink)`` keeps a dialect with few posts (or
    one story told only in it) from cancelling that story.
    """
    out = emb.copy()
    names = np.asarray(registers)
    for name in sorted(set(registers) - {skip}):
        rows = np.flatnonzero(names == name)
        out[rows] -= out[rows].mean(axis=0) * (len(rows) / (len(rows) + shrink))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(out / norms, dtype=np.float32)


def _normalise_rows(m: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags((1.0 / norms).astype(np.float32)) @ m)


@dataclass
class Centroids:
    emb: np.ndarray  # (k, d) unit rows in centred space
    lex: sparse.csr_matrix  # (k, V) unit rows

    def __len__(self) -> int:
        return int(self.emb.shape[0])


@dataclass
class Features:
    """Per-post vectors of one update: centred embeddings and lexical rows, plus per-post weights."""

    emb: np.ndarray  # (n, d) float32, unit rows
    lex: sparse.csr_matrix  # (n, V) float32, unit rows (or empty)
    weight: np.ndarray  # (n,) float32: 1 for a public-service post, less for the rest
    alpha: float

    def __len__(self) -> int:
        return int(self.emb.shape[0])

    def pairwise(self, rows: np.ndarray) -> np.ndarray:
        lex = self.lex[rows]
        return np.asarray(
            self.alpha * (self.emb[rows] @ self.emb[rows].T) + (1 - self.alpha) * (lex @ lex.T).toarray()
        )

    def to_centroids(self, rows: np.ndarray, cents: Centroids) -> np.ndarray:
        emb = self.emb[rows] @ cents.emb.T
        lex = (self.lex[rows] @ cents.lex.T).toarray()
        return np.asarray(self.alpha * emb + (1 - self.alpha) * lex, dtype=np.float32)

    def centroids(self, labels: np.ndarray, k: int) -> Centroids:
        """Weighted mean of each label's rows (``-1`` = none), re-normalised."""
        rows = np.flatnonzero(labels >= 0)
        m = sparse.csr_matrix((self.weight[rows], (labels[rows], rows)), shape=(k, len(self)))
        emb = np.asarray(m @ self.emb, dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return Centroids(emb / norms, _normalise_rows(sparse.csr_matrix(m @ self.lex)))


def _chunks(n: int, size: int) -> Iterator[np.ndarray]:
    for start in range(0, n, size):
        yield np.arange(start, min(start + size, n))


def best_centroid(
    feats: Features, cents: Centroids, threshold: float, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Label (``-1`` below ``threshold``) and similarity of every post to its nearest centroid."""
    n = len(feats)
    labels = np.full(n, -1, dtype=np.int64)
    sims = np.zeros(n, dtype=np.float32)
    if len(cents) == 0:
        return labels, sims
    for rows in _chunks(n, chunk):
        s = feats.to_centroids(rows, cents)
        best = s.argmax(axis=1)
        top = s[np.arange(len(rows)), best]
        sims[rows] = top
        labels[rows] = np.where(top >= threshold, best, -1)
    return labels, sims


def seed_labels(
    feats: Features,
    order: np.ndarray,
    *,
    link_threshold: float,
    assign_threshold: float,
    min_seed: int,
    chunk_size: int,
) -> np.ndarray:
    """Seed groups: average linkage cut at ``link_threshold`` inside each chunk of ``order``.

    A post already within ``assign_threshold`` of a seed from an earlier chunk is not re-clustered, so
    each chunk only spends linkage time on what is new.
    """
    n = len(feats)
    labels = np.full(n, -1, dtype=np.int64)
    k = int(labels.max()) + 1 if n else 0
    for rows_idx in _chunks(len(order), chunk_size):
        rows = order[rows_idx]
        rows = rows[labels[rows] < 0]
        if k and len(rows):
            cents = feats.centroids(labels, k)
            near = feats.to_centroids(rows, cents).max(axis=1) >= assign_threshold
            rows = rows[~near]
        if len(rows) < min_seed:
            continue
        dist = np.clip(1.0 - feats.pairwise(rows), 0.0, None)
        np.fill_diagonal(dist, 0.0)
        dist = (dist + dist.T) / 2
        groups = fcluster(
            linkage(squareform(dist, checks=False), method="average"), 1.0 - link_threshold, "distance"
        )
        ids, counts = np.unique(groups, return_counts=True)
        for gid in ids[counts >= min_seed]:
            labels[rows[groups == gid]] = k
            k += 1
    return labels


def _compact(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber labels 0..k-1 in order of first appearance (deterministic)."""
    out = np.full_like(labels, -1)
    mapping: dict[int, int] = {}
    for i, lab in enumerate(labels.tolist()):
        if lab >= 0:
            out[i] = mapping.setdefault(lab, len(mapping))
    return out, len(mapping)


def _merge_close(cents: Centroids, labels: np.ndarray, threshold: float, alpha: float) -> np.ndarray:
    """Union groups whose centroids are within ``threshold`` (same story seeded twice)."""
    k = len(cents)
    if k < 2:
        return labels
    sim = alpha * (cents.emb @ cents.emb.T) + (1 - alpha) * (cents.lex @ cents.lex.T).toarray()
    parent = list(range(k))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(sim >= threshold, 1)), strict=True):
        ri, rj = root(int(i)), root(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    remap = np.array([root(i) for i in range(k)])
    return np.where(labels >= 0, remap[np.maximum(labels, 0)], -1)


def refine(
    feats: Features,
    labels: np.ndarray,
    *,
    assign_threshold: float,
    merge_threshold: float,
    iterations: int,
    min_members: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholded k-means from the seeds: assign to the nearest centroid, re-estimate, merge twins.

    Returns final labels and each post's similarity to its own centroid (0 when unassigned).
    """
    labels, k = _compact(labels)
    sims = np.zeros(len(feats), dtype=np.float32)
    for _ in range(iterations):
        if k == 0:
            break
        cents = feats.centroids(labels, k)
        labels, k = _compact(_merge_close(cents, labels, merge_threshold, feats.alpha))
        cents = feats.centroids(labels, k)
        labels, sims = best_centroid(feats, cents, assign_threshold)
        counts = np.bincount(labels[labels >= 0], minlength=k)
        labels = np.where((labels >= 0) & (counts[np.maximum(labels, 0)] >= min_members), labels, -1)
        labels, k = _compact(labels)
    sims = np.where(labels >= 0, sims, 0.0).astype(np.float32)
    return labels, sims
