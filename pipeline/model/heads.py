"""The linear heads next to a sentiment model (category, attribution) when a trainer writes a new model.

A head fitted on other embeddings gives wrong answers without any error, so a head whose layer the new
model changed is removed, with the command that refits it. A head whose layer stayed exactly as it was (the
topic layer, when the fine-tune wrote the layers up to it unchanged) is carried over: the sentiment model can
then be replaced without refitting the heads or moving their decisions.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Set
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.model.attribution import ATTRIBUTION_HEAD_FILE
from pipeline.model.category import CATEGORY_HEAD_FILE
from pipeline.model.layers import EmbeddingLayer, read_layer
from pipeline.model.sentiment import META_FILE, write_meta

if TYPE_CHECKING:
    from rich.console import Console

HEAD_SECTIONS = {CATEGORY_HEAD_FILE: "category", ATTRIBUTION_HEAD_FILE: "attribution"}
"""Each head's file and its section in ``pantau_model.json``, in the order they are fitted."""


def head_layer(model_dir: Path, name: str, console: Console) -> EmbeddingLayer | None:
    """The layer the head file ``name`` in ``model_dir`` reads, from its metadata only; None when there is
    none, or when it cannot be read (then it is not carried, and the run that wrote a new model goes on)."""
    from safetensors import safe_open

    path = model_dir / name
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="np") as f:
            return read_layer(f.metadata() or {}, path)
    except Exception as exc:  # any unreadable head is one not to carry
        console.print(f"[yellow]not carried over: {path} cannot be read ({type(exc).__name__}: {exc})[/]")
        return None


def remove_head(model_dir: Path, name: str, console: Console) -> None:
    """Remove a head that no longer fits ``model_dir`` and its record, saying how to refit it."""
    target, section = model_dir / name, HEAD_SECTIONS[name]
    if not target.exists():
        return
    target.unlink()
    meta_path = model_dir / META_FILE
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.pop(section, None) is not None:
            write_meta(model_dir, meta)
    console.print(
        f"[yellow]removed stale {target}[/] (fitted on other inputs); retrain it: "
        f"pantau model train --task {section} --out {model_dir}"
    )


def settle_heads(src: Path, out_dir: Path, unchanged: Set[EmbeddingLayer], console: Console) -> list[str]:
    """Copy ``src``'s heads that read a layer in ``unchanged`` (the layers whose output ``out_dir``'s new
    encoder left exactly as ``src``'s was) into ``out_dir``; remove every other head there. Returns the
    ``pantau_model.json`` sections of the heads carried, whose records stay true for ``out_dir``."""
    carried: list[str] = []
    for name, section in HEAD_SECTIONS.items():
        layer = head_layer(src, name, console) if unchanged else None
        # the attribution head reads the category head's probabilities too: it goes where that head goes
        inputs_kept = section == "category" or "category" in carried
        if layer is not None and layer in unchanged and inputs_kept:
            target = out_dir / name
            if (src / name).resolve() != target.resolve():
                shutil.copyfile(src / name, target)
            carried.append(section)
            console.print(f"kept {target}: it reads the {layer} layer, which this model left unchanged")
        else:
            remove_head(out_dir, name, console)
    return carried
