"""Which pooled encoder output a linear head (category, attribution) reads.

``last``: the last layer, which sentiment fine-tuning moves, so a head on it must be refitted after every
fine-tune. ``topic``: ``TOPIC_LAYER``, which a fine-tune with ``--freeze-layers`` of at least
``TOPIC_LAYER`` leaves exactly as it was, so the heads on it carry over to the new sentiment model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

import numpy as np

EmbeddingLayer = Literal["last", "topic"]
LAYERS: tuple[EmbeddingLayer, ...] = get_args(EmbeddingLayer)
LAYER_KEY = "embedding_layer"
"""Safetensors metadata key a head records its layer under; a head without it reads ``last``."""


def parse_layer(value: str) -> EmbeddingLayer | None:
    """``value`` as a layer name, None when it names none."""
    for layer in LAYERS:
        if value == layer:
            return layer
    return None


def read_layer(metadata: Mapping[str, str], path: Path) -> EmbeddingLayer:
    value = metadata.get(LAYER_KEY, "last")
    layer = parse_layer(value)
    if layer is None:
        raise ValueError(f"{path}: {LAYER_KEY} {value!r} is not one of {', '.join(LAYERS)}")
    return layer


def pick_layer(layer: EmbeddingLayer, last: np.ndarray, topic: np.ndarray) -> np.ndarray:
    """The embeddings ``layer`` names, from the pair one encoder pass gives."""
    return topic if layer == "topic" else last
