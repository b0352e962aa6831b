"""Sentiment of a post: mE5-small encoder (fine-tuned) + a calibrated linear head, from local files only."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.model.encoder import (
    DEFAULT_MAX_LENGTH,
    Backend,
    PooledEncoder,
    embed_texts,
    load_pooled_encoder,
    load_tokenizer,
    save_safetensors,
)
from pipeline.model.layers import EmbeddingLayer, pick_layer
from pipeline.model.packed import HEAD_FILE, PACKED_FILE, read_head
from pipeline.settings import DEFAULT_MODEL_DIR
from schemas.posts import Sentiment

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SentimentPrediction = Sentiment
"""The pipeline's own contract (``schemas.posts.Sentiment``): label, score of that label, all three scores."""

META_FILE = "pantau_model.json"
LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
"""The sentiment head's outputs, in order."""

__all__ = ["DEFAULT_MODEL_DIR", "SentimentModel", "SentimentPrediction", "UnencodableText"]


class UnencodableText(ValueError):
    """A text the tokenizer reduces to nothing or to unknown pieces only: dead-letter it, don't guess."""


@dataclass(frozen=True)
class Head:
    """Multinomial logistic regression with the temperature already folded into ``weight`` and ``bias``."""

    weight: np.ndarray  # (3, hidden)
    bias: np.ndarray  # (3,)
    labels: tuple[str, ...] = LABELS

    def probabilities(self, emb: np.ndarray) -> np.ndarray:
        logits = emb @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return np.asarray(p / p.sum(axis=1, keepdims=True))

    def save(self, path: Path, metadata: dict[str, str] | None = None) -> None:
        # C order explicitly: sklearn's coef_ can be Fortran-ordered, and safetensors writes raw memory.
        tensors = {
            k: np.ascontiguousarray(v, dtype=np.float32)
            for k, v in (("weight", self.weight), ("bias", self.bias))
        }
        save_safetensors(path, tensors, {"labels": ",".join(self.labels), **(metadata or {})})

    @classmethod
    def load(cls, path: Path) -> Head:
        labels, weight, bias = read_head(path)
        return cls(weight, bias, tuple(labels))


def write_meta(model_dir: Path, meta: dict[str, Any]) -> None:
    """``pantau_model.json`` in the one layout every writer uses, so a retrain shows as a readable diff."""
    text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    (model_dir / META_FILE).write_text(text, encoding="utf-8")


def directory_mb(model_dir: Path) -> float:
    """Every file of the model directory: what a clone carries and what the size limits apply to."""
    return sum(p.stat().st_size for p in model_dir.iterdir() if p.is_file()) / 1e6


def weights_version(model_dir: Path) -> str:
    """``e5s-id-head-<hash>``: changes whenever the encoder weights, tokenizer or head change."""
    h = hashlib.sha256()
    for name in (PACKED_FILE, "tokenizer.json", HEAD_FILE):
        path = model_dir / name
        if path.exists():
            h.update(path.read_bytes())
    return f"e5s-id-head-{h.hexdigest()[:10]}"


class SentimentModel:
    """Negative / neutral / positive for short informal Indonesian posts.

    ``predict`` answers for every text it is given, in order; call ``check_encodable`` first (or pass
    ``strict=True``) to route texts the tokenizer cannot represent to the dead-letter topic.
    """

    def __init__(
        self,
        encoder: PooledEncoder,
        tokenizer: Tokenizer,
        head: Head,
        *,
        version: str,
        backend: Backend = "fp32",
        prefix: str = "query: ",
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = 32,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.head = head
        self.version = version
        self.backend = backend
        self.prefix = prefix
        self.max_length = max_length
        self.batch_size = batch_size
        self.meta = meta or {}

    @classmethod
    def load(
        cls,
        model_dir: Path = DEFAULT_MODEL_DIR,
        *,
        backend: Backend = "fp32",
        threads: int | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = 32,
    ) -> SentimentModel:
        """Load from ``model_dir`` (no network); ``threads``: the cores the backend may use (torch's intra-op
        threads; onnx-int8's texts run side by side)."""
        meta_path = model_dir / META_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        return cls(
            load_pooled_encoder(model_dir, backend, threads),
            load_tokenizer(model_dir),
            Head.load(model_dir / HEAD_FILE),
            version=meta.get("version") or weights_version(model_dir),
            backend=backend,
            prefix=meta.get("prefix", "query: "),
            max_length=max_length,
            batch_size=batch_size,
            meta=meta,
        )

    def check_encodable(self, text: str) -> str | None:
        """Why ``text`` cannot be scored (``None`` if it can): nothing left after normalisation, or only
        ``<unk>`` pieces (a script the trimmed vocabulary lacks)."""
        self.tokenizer.no_truncation()
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if not ids:
            return "empty after tokenizer normalisation"
        unk, space = self.tokenizer.token_to_id("<unk>"), self.tokenizer.token_to_id("▁")
        if all(i in (unk, space) for i in ids):
            return "only characters the tokenizer does not know"
        return None

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """L2-normalised mean-pooled last-layer embeddings ``(n, 384)``: what the sentiment head reads."""
        return self.embed_with_topics(texts, progress)[0]

    def embed_layer(
        self, texts: Sequence[str], layer: EmbeddingLayer, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """The embeddings a head on ``layer`` reads (``pipeline.model.layers``)."""
        return pick_layer(layer, *self.embed_with_topics(texts, progress))

    def embed_with_topics(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Head embeddings and topic embeddings (``TOPIC_LAYER`` pooled), both ``(n, 384)``, one pass;
        ``progress`` is told how many texts each batch finished."""
        if not texts:
            empty = np.zeros((0, self.encoder.hidden_size), dtype=np.float32)
            return empty, empty
        pair = embed_texts(
            self.encoder,
            self.tokenizer,
            list(texts),
            prefix=self.prefix,
            max_length=self.max_length,
            batch_size=self.batch_size,
            progress=progress,
        )
        return pair[:, 0], pair[:, 1]

    def predict_proba(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Probabilities ``(n, 3)`` in the order of ``self.head.labels``; ``progress`` as in
        ``embed_with_topics``."""
        return self.probabilities_from_embeddings(self.embed(texts, progress))

    def probabilities_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        """Reuse embeddings already computed for topics: no second encoder pass."""
        if len(emb) == 0:
            return np.zeros((0, len(self.head.labels)), dtype=np.float32)
        return self.head.probabilities(emb)

    def predict(self, texts: Sequence[str], *, strict: bool = False) -> list[SentimentPrediction]:
        """One prediction per text, in order; ``strict`` raises ``UnencodableText`` before any work."""
        if strict:
            for i, text in enumerate(texts):
                reason = self.check_encodable(text)
                if reason is not None:
                    raise UnencodableText(f"text #{i}: {reason}")
        return self.predictions_from_proba(self.predict_proba(texts))

    def predictions_from_proba(self, proba: np.ndarray) -> list[SentimentPrediction]:
        labels = self.head.labels
        out: list[SentimentPrediction] = []
        for row in proba:
            scores = {lab: float(p) for lab, p in zip(labels, row, strict=True)}
            best = labels[int(np.argmax(row))]
            out.append(Sentiment.model_validate({"label": best, "score": scores[best], "scores": scores}))
        return out
