"""Token ids, padded batches and the order an epoch visits them in (optionally balanced by domain)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from tokenizers import Tokenizer

CHUNK_BATCHES = 50
"""Batches per length-sorting chunk: padding stays small while batch composition stays random."""

__all__ = ["CHUNK_BATCHES", "collate", "domain_pool", "encode", "epoch_batches"]


def encode(tok: Tokenizer, texts: Sequence[str], prefix: str, max_length: int) -> list[list[int]]:
    """Token ids of ``prefix + text``, cut at ``max_length``, unpadded (batches pad to their longest)."""
    tok.enable_truncation(max_length)
    tok.no_padding()
    return [e.ids for e in tok.encode_batch([prefix + t for t in texts])]


def collate(
    ids: list[list[int]], idx: Sequence[int], pad_id: int, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``idx`` of ``ids`` padded to the longest of them, with their attention mask."""
    width = max(len(ids[i]) for i in idx)
    x = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        x[row, : len(ids[i])] = torch.tensor(ids[i])
        mask[row, : len(ids[i])] = 1
    return x.to(device), mask.to(device)


def domain_pool(domains: Sequence[str], weights: Mapping[str, float], seed: int, epoch: int) -> np.ndarray:
    """The rows one epoch trains on when sampling is balanced by domain: as many as there are rows in all,
    split between the domains by ``weights`` (a domain not named weighs 1; largest remainders make the
    counts add up). A domain gets whole reshuffled passes over its rows, then part of one more; a pure
    function of (seed, epoch), like the batch order."""
    names = sorted(set(domains))
    column = np.asarray(domains)
    share = np.array([float(weights.get(name, 1.0)) for name in names])
    share = share / share.sum()
    exact = share * len(domains)
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: len(domains) - int(counts.sum())]:
        counts[i] += 1
    rng = np.random.default_rng([seed, epoch, 1])
    picked: list[np.ndarray] = []
    for name, count in zip(names, counts, strict=True):
        rows = np.flatnonzero(column == name)
        passes = [rng.permutation(rows) for _ in range(-(-count // len(rows)))]
        picked.append(np.concatenate(passes)[:count] if passes else rows[:0])
    return np.concatenate(picked)


def epoch_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, pool: np.ndarray | None = None
) -> list[np.ndarray]:
    """Shuffle, sort by length within chunks, shuffle the batches; a pure function of (seed, epoch) so a
    resumed run rebuilds the same order and skips the batches it already trained on.

    ``pool``: the rows this epoch trains on (:func:`domain_pool`), default each row once.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)) if pool is None else pool[rng.permutation(len(pool))]
    batches: list[np.ndarray] = []
    chunk = batch_size * CHUNK_BATCHES
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
