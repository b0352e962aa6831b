"""The module that trains (encoder + head, as ``SentimentModel`` computes it), how its parameters move
(layer-wise learning rates, warmup and decay) and the head it starts from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipeline.model.encoder import TorchEncoder, embed_texts, pooled_pair
from pipeline.model.modeling_pantau import mean_pool
from pipeline.model.train import Fitted, fit_head
from pipeline.model.training.batching import collate
from pipeline.model.training.config import Schedule, student_depth

if TYPE_CHECKING:
    from rich.console import Console
    from tokenizers import Tokenizer
    from transformers import BertModel

HEAD_INIT_TEXTS = 3000
"""Training texts a starting head is fitted on (:func:`starting_head`)."""

__all__ = [
    "HEAD_INIT_TEXTS",
    "Classifier",
    "balanced_class_weight",
    "freeze",
    "keep_layers",
    "lr_factor",
    "param_groups",
    "predict_logits",
    "softmax",
    "starting_head",
    "trainable_state",
]


class Classifier(torch.nn.Module):
    """Encoder → mean over real tokens → L2-normalise → linear: exactly what ``SentimentModel`` computes."""

    def __init__(self, encoder: BertModel, weight: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(np.asarray(weight, dtype=np.float32)))
            self.head.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float32)))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        out: torch.Tensor = self.head(mean_pool(states, mask))
        return out

    def with_embeddings(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the ``(batch, 2, hidden)`` pooled pair (last layer, ``TOPIC_LAYER``) from one pass:
        what distillation anchors to the teacher's."""
        pair = pooled_pair(self.encoder, mask, input_ids=ids)
        logits: torch.Tensor = self.head(pair[:, 0])
        return logits, pair


def keep_layers(encoder: BertModel, layers: int | None, freeze_layers: int) -> int:
    """Cut ``encoder`` to its first ``layers`` (a faster student; checked by ``student_depth``); returns
    the depth kept."""
    depth = int(encoder.config.num_hidden_layers)
    kept = student_depth(depth, layers, freeze_layers)
    if kept != depth:
        encoder.encoder.layer = encoder.encoder.layer[:kept]
        encoder.config.num_hidden_layers = kept
    return kept


def freeze(encoder: BertModel, word_embeddings: bool, layers: int) -> None:
    """Hold parameters fixed: the word embeddings (most of the weights; frozen ones keep their 4-bit
    blocks when stored), and with ``layers`` all embeddings and the first ``layers`` layers (cheaper
    steps)."""
    if word_embeddings:
        encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    if layers:
        encoder.embeddings.requires_grad_(False)
        for layer in encoder.encoder.layer[:layers]:
            layer.requires_grad_(False)


def balanced_class_weight(y: torch.Tensor, n_labels: int) -> torch.Tensor:
    """Cross-entropy weights inversely proportional to each label's count (``class_weighted``); unlabelled
    rows (negative ``y``) do not count."""
    rows = y.numpy()
    labelled = rows[rows >= 0]
    counts = np.bincount(labelled, minlength=n_labels).astype(np.float64)
    return torch.tensor(len(labelled) / (n_labels * np.maximum(counts, 1)), dtype=torch.float32)


def param_groups(
    model: Classifier, lr: float, layer_decay: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Layer-wise lr decay (head and top layer at ``lr``, each layer below × ``layer_decay``): lower layers
    hold the general-purpose features, so they should move least."""
    n_layers = int(model.encoder.config.num_hidden_layers)
    groups: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("head."):
            depth = n_layers + 1
        elif name.startswith("encoder.encoder.layer."):
            depth = int(name.split(".")[3]) + 1
        else:  # embeddings (position, type, LayerNorm; word embeddings unless frozen)
            depth = 0
        scale = layer_decay ** max(0, n_layers - depth)
        groups.setdefault((scale, p.ndim >= 2), []).append(p)
    return [
        {"params": ps, "lr": lr * scale, "weight_decay": weight_decay if decayed else 0.0}
        for (scale, decayed), ps in sorted(groups.items(), key=lambda kv: (-kv[0][0], kv[0][1]))
    ]


def lr_factor(step: int, total: int, warmup: int, schedule: Schedule) -> float:
    """Share of the peak learning rate at ``step``: linear warmup, then linear or cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


@torch.inference_mode()
def predict_logits(
    model: Classifier, ids: list[list[int]], pad_id: int, device: str, batch_size: int = 64
) -> np.ndarray:
    """Logits of every row of ``ids`` (eval mode, length-sorted batches), float64 in row order."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), model.head.out_features), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = model(*collate(ids, idx, pad_id, device)).double().cpu().numpy()
    model.train(was_training)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return np.asarray(p / p.sum(axis=1, keepdims=True))


def trainable_state(model: Classifier) -> dict[str, torch.Tensor]:
    """A CPU copy of the parameters that train: all a checkpoint needs besides the source model."""
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def starting_head(
    encoder: BertModel,
    tok: Tokenizer,
    prefix: str,
    texts: Sequence[str],
    labels: Sequence[str],
    v_texts: Sequence[str],
    v_labels: Sequence[str],
    seed: int,
    console: Console,
) -> Fitted:
    """A linear head fitted on the (truncated) encoder's frozen embeddings of up to 3,000 training texts:
    the source head reads the last of all layers, so a shallower student without a teacher starts here."""
    pick = np.random.default_rng(seed).permutation(len(texts))[:HEAD_INIT_TEXTS]
    with console.status(f"fitting a starting head on the {encoder.config.num_hidden_layers}-layer output …"):
        enc = TorchEncoder(encoder)
        x = embed_texts(enc, tok, [texts[i] for i in pick], prefix=prefix)[:, 0]
        x_va = embed_texts(enc, tok, list(v_texts), prefix=prefix)[:, 0]
        fitted = fit_head(x, [labels[i] for i in pick], x_va, v_labels)
    console.print(f"starting head: valid macro-F1 {fitted.valid_after.macro_f1:.4f} (frozen student)")
    return fitted
