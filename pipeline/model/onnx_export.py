"""The ONNX Runtime int8 backend: export the encoder once, run it without torch on the hot path.

The exported graph starts after the word-embedding lookup: the 85k-row embedding table stays in its
4-bit blocks inside ``encoder.q4.safetensors`` (18 MB) and is looked up in numpy, so the ONNX file holds
only the transformer layers instead of repeating the table.

Linear weights are int8 per output channel; activations are quantised at run time by the range of each
input (ONNX Runtime dynamic quantisation), so ``OnnxEncoder`` feeds every text as its own input: a text's
scores never depend on the texts batched with it, and a replayed post gets the same ones.
``pantau model eval --backend onnx-int8`` reports what int8 costs in F1.

Re-quantising our int8-per-row matrices that way reproduces them bit for bit (transposed, with Q, K and V
side by side in the fused attention), so the file leaves those weights out (12 MB for 7 layers) and
``OnnxEncoder.load`` fills them in from ``encoder.q4.safetensors``: the directory stores each weight once.
Load the file with ``OnnxEncoder.load``, not with a bare ``onnxruntime.InferenceSession``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.model.encoder import HF_FILE, load_encoder, pooled_pair, pooled_row_by_row
from pipeline.model.packed import BLOCK_BYTES, I8_SUFFIX, PACKED_FILE, Q4_SUFFIX, QK, dequantize_q4

if TYPE_CHECKING:
    import onnx
    import onnxruntime
    from rich.console import Console

ONNX_FILE = "encoder.int8.onnx"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
SOURCE_KEY = "pantau_source_sha256"
SHARED_KEY = "pantau_shared_int8"
"""Metadata: initializer name → the ``.i8`` tensors of ``encoder.q4.safetensors`` that, transposed and
concatenated along columns, are its bytes (left out of the file)."""
OPSET = 17

__all__ = ["ONNX_FILE", "OnnxEncoder", "StaleExport", "export_onnx"]


class StaleExport(ValueError):
    """The ONNX file was exported from other encoder weights than the ones next to it."""


def encoder_weights_sha256(model_dir: Path) -> str:
    name = PACKED_FILE if (model_dir / PACKED_FILE).exists() else HF_FILE
    return hashlib.sha256((model_dir / name).read_bytes()).hexdigest()


class WordEmbeddings:
    """Row lookup in the word-embedding table, kept 4-bit when the model directory stores it so."""

    def __init__(self, table: np.ndarray, cols: int, *, q4: bool) -> None:
        self.table, self.cols, self.q4 = table, cols, q4

    @classmethod
    def load(cls, model_dir: Path) -> WordEmbeddings:
        from safetensors import safe_open

        if (model_dir / PACKED_FILE).exists():
            with safe_open(str(model_dir / PACKED_FILE), framework="np") as f:
                if WORD_EMBEDDINGS + Q4_SUFFIX in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                    blocks = f.get_tensor(WORD_EMBEDDINGS + Q4_SUFFIX)
                    return cls(blocks, blocks.shape[1] // BLOCK_BYTES * QK, q4=True)
                table = f.get_tensor(WORD_EMBEDDINGS)
        else:
            with safe_open(str(model_dir / HF_FILE), framework="np") as f:
                table = f.get_tensor(WORD_EMBEDDINGS)
        return cls(table.astype(np.float32), table.shape[1], q4=False)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """``(batch, width)`` ids → ``(batch, width, hidden)`` float32; dequantises only the rows used."""
        uniq, inverse = np.unique(ids, return_inverse=True)
        rows = dequantize_q4(self.table[uniq], self.cols) if self.q4 else self.table[uniq]
        return np.asarray(rows[inverse.reshape(ids.shape)], dtype=np.float32)


def _int8_matrices(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    if not (model_dir / PACKED_FILE).exists():
        return {}
    with safe_open(str(model_dir / PACKED_FILE), framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.endswith(I8_SUFFIX)}  # noqa: SIM118


def _onnx_layout(matrices: dict[str, np.ndarray], keys: list[str]) -> np.ndarray:
    """ONNX MatMul weights are ``(in, out)``: torch rows become columns, fused Q/K/V sit side by side."""
    return np.ascontiguousarray(np.concatenate([matrices[k].T for k in keys], axis=1))


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() + str(array.shape)


def _leave_out_shared(model: onnx.ModelProto, model_dir: Path) -> dict[str, list[str]]:
    """Empty every int8 initializer that the safetensors file already holds; returns what was left out."""
    from onnx import TensorProto, numpy_helper

    matrices = _int8_matrices(model_dir)
    layouts = [[k] for k in matrices]
    layouts += [
        [f"{prefix}{part}.weight{I8_SUFFIX}" for part in ("query", "key", "value")]
        for prefix in sorted({k.rsplit("query.", 1)[0] for k in matrices if ".self.query." in k})
    ]
    candidates = {
        _digest(_onnx_layout(matrices, keys)): keys for keys in layouts if all(k in matrices for k in keys)
    }
    shared: dict[str, list[str]] = {}
    for init in model.graph.initializer:
        if init.data_type != TensorProto.INT8 or len(init.dims) != 2:
            continue
        keys = candidates.get(_digest(numpy_helper.to_array(init)))
        if keys is not None:
            shared[init.name] = keys
            init.ClearField("raw_data")
    return shared


def _fill_shared(model: onnx.ModelProto, model_dir: Path, shared: dict[str, list[str]]) -> None:
    if not shared:  # a standalone export (no int8 matrices in the safetensors file, or an older one)
        return
    matrices = _int8_matrices(model_dir)
    for init in model.graph.initializer:
        if init.name in shared:
            init.raw_data = _onnx_layout(matrices, shared[init.name]).tobytes()


class OnnxEncoder:
    """``PooledEncoder`` over an ONNX Runtime session of ``encoder.int8.onnx``.

    Each row runs alone, trimmed to its own tokens: dynamic quantisation scales the activations by the
    range of the whole input tensor, so in a shared batch a post's probabilities would depend on the posts
    (and the padding) next to it, and a redelivered post could come back with another label.
    """

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        words: WordEmbeddings,
        hidden_size: int,
        rows_at_once: int = 1,
    ) -> None:
        """``rows_at_once``: rows run concurrently, each on one thread (one short row gains little from
        several intra-op threads; two rows side by side use two cores fully)."""
        self.session, self.words, self.hidden_size = session, words, hidden_size
        self._pool = ThreadPoolExecutor(rows_at_once, "pantau-onnx") if rows_at_once > 1 else None

    @classmethod
    def load(cls, model_dir: Path, threads: int | None = None) -> OnnxEncoder:
        import onnx
        import onnxruntime as ort

        path = model_dir / ONNX_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `pantau model export --model {model_dir}`")
        model = onnx.load(str(path))
        meta = {p.key: p.value for p in model.metadata_props}
        if len(model.graph.output[0].type.tensor_type.shape.dim) != 3:  # from before the topic-layer output
            raise StaleExport(
                f"{path} has an old output layout: run `pantau model export --model {model_dir}`"
            )
        if meta.get(SOURCE_KEY) != encoder_weights_sha256(model_dir):
            raise StaleExport(
                f"{path} was exported from other encoder weights: "
                f"run `pantau model export --model {model_dir}`"
            )
        _fill_shared(model, model_dir, json.loads(meta.get(SHARED_KEY, "{}")))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        words = WordEmbeddings.load(model_dir)
        return cls(session, words, words.cols, rows_at_once=threads or usable_cores())

    def pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return pooled_row_by_row(ids, mask, self._pooled_one, self.hidden_size, self._pool)

    def _pooled_one(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"inputs_embeds": self.words.lookup(ids), "attention_mask": mask}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS tells it (a pinned container)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def record_export(model_dir: Path, info: dict[str, Any]) -> None:
    """Keep a fine-tuned model's ``pantau_model.json`` true after ``pantau model export`` rewrote the file."""
    from pipeline.model.sentiment import META_FILE, directory_mb, write_meta

    meta_path = model_dir / META_FILE
    if not meta_path.exists():
        return
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if "finetune" not in meta:
        return
    meta["finetune"]["onnx"] = info
    meta["finetune"]["artifact_mb"] = round(directory_mb(model_dir), 1)
    write_meta(model_dir, meta)


def export_onnx(model_dir: Path, console: Console | None = None) -> dict[str, Any]:
    """Export the encoder of ``model_dir`` to ``model_dir/encoder.int8.onnx``; seconds, not minutes."""
    import warnings

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    started = time.perf_counter()
    encoder = load_encoder(model_dir, "fp32")
    config = encoder.config
    config._attn_implementation = "eager"  # the pattern ONNX Runtime's optimizer fuses into one Attention op

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return pooled_pair(self.encoder, attention_mask, inputs_embeds=inputs_embeds)

    dims = {0: "batch", 1: "tokens"}
    with tempfile.TemporaryDirectory(prefix="pantau-onnx-") as tmp:
        fp32, fused, int8 = (Path(tmp) / n for n in ("fp32.onnx", "fused.onnx", "int8.onnx"))
        sample = (torch.randn(2, 9, int(config.hidden_size)), torch.ones(2, 9, dtype=torch.long))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notices on Python branches that ignore the input
            torch.onnx.export(
                Pooled().eval(),
                sample,
                str(fp32),
                input_names=["inputs_embeds", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={"inputs_embeds": dims, "attention_mask": dims, "embedding": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        # Fuse GELU and residual + LayerNorm into ONNX Runtime's kernels before quantising the MatMuls.
        optimize_model(
            str(fp32),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=1,
        ).save_model_to_file(str(fused))
        logging.disable(logging.WARNING)  # the quantiser's advice to pre-process: fusion already did
        try:
            quantize_dynamic(
                str(fused),
                str(int8),
                per_channel=True,
                weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            logging.disable(logging.NOTSET)
        model = onnx.load(str(int8))
        shared = _leave_out_shared(model, model_dir)
        props = {SOURCE_KEY: encoder_weights_sha256(model_dir)}
        if shared:
            props[SHARED_KEY] = json.dumps(shared)
        onnx.helper.set_model_props(model, props)
        onnx.save(model, str(int8))
        target = model_dir / ONNX_FILE
        shutil.copyfile(int8, target.with_name(target.name + ".tmp"))
        os.replace(target.with_name(target.name + ".tmp"), target)
    target.chmod(0o644)
    info = {
        "file": ONNX_FILE,
        "mb": round(target.stat().st_size / 1e6, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "shared_int8_matrices": len(shared),
    }
    if console is not None:
        console.print(
            f"exported {target} ({info['mb']} MB; {len(shared)} int8 matrices read from {PACKED_FILE}) "
            f"in {info['seconds']} s"
        )
    return info
