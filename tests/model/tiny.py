"""A fine-tune of a few steps on 16 SmSA texts, shared by the training tests."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from pipeline.model.data import DEFAULT_MODEL_DIR, SMSA_DIR
from pipeline.model.training.config import FinetuneConfig
from pipeline.model.training.finetune import finetune_sentiment


def tiny_smsa(root: Path) -> tuple[Path, Path]:
    """16 train and 8 valid rows, all three labels present."""
    out = []
    for name, n in (("train_preprocess.tsv", 16), ("valid_preprocess.tsv", 8)):
        lines = (SMSA_DIR / name).read_text(encoding="utf-8").splitlines()
        picked = [next(row for row in lines if row.endswith("\tneutral"))]
        picked += [row for row in lines if not row.endswith("\tneutral")][: n - 1]
        path = root / name
        path.write_text("\n".join(picked) + "\n", encoding="utf-8")
        out.append(path)
    return out[0], out[1]


def finetune_tiny(
    data: tuple[Path, Path], out: Path, ckpt: Path, source: Path = DEFAULT_MODEL_DIR, **kw: Any
) -> dict[str, Any]:
    torch.set_num_threads(2)
    defaults: dict[str, Any] = {"epochs": 1, "batch_size": 8, "max_length": 24, "threads": 2, "onnx": False}
    config = FinetuneConfig(
        model_in=source,
        out_dir=out,
        train_files=[data[0]],
        valid_files=kw.pop("valid_files", [data[1]]),
        checkpoint_dir=ckpt,
        device="cpu",
        **(defaults | kw),
    )
    return finetune_sentiment(config, Console(file=io.StringIO()))
