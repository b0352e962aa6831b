"""The linear heads next to a sentiment model (category, attribution) when a trainer writes a new model.

A head fitted on other embeddings gives wrong answers without any error, so a head whose layer the new model
changed is removed, with the command that refits it. A head whose layer stayed exactly as it was (the topic
layer, when the fine-tune froze the layers up to it) is carried over: the sentiment model can then be
replaced without refitting the heads or moving their decisions.
"""

from __future__ import annotations

import shutil
from collections.abc import Set
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.model.attribution import ATTRIBUTION_HEAD_FILE, AttributionModel
from pipeline.model.category import CATEGORY_HEAD_FILE, CategoryModel
from pipeline.model.layers import EmbeddingLayer

if TYPE_CHECKING:
    from rich.console import Console

HEAD_SECTIONS = {CATEGORY_HEAD_FILE: "category", ATTRIBUTION_HEAD_FILE: "attribution"}
"""Each head's file and its section in ``pantau_model.json``, in the order they are fitted."""


def head_layer(model_dir: Path, name: str) -> EmbeddingLayer | None:
    """The layer the head ``name`` in ``model_dir`` reads, None without one."""
    if name == CATEGORY_HEAD_FILE:
        return CategoryModel.load(model_dir).layer if (model_dir / name).exists() else None
    attribution = AttributionModel.load(model_dir)
    return attribution.layer if attribution is not None else None


def settle_heads(src: Path, out_dir: Path, unchanged: Set[EmbeddingLayer], console: Console) -> list[str]:
    """Copy ``src``'s heads that read a layer in ``unchanged`` (the layers whose output ``out_dir``'s new
    encoder left as ``src``'s was) into ``out_dir``; remove every other head there. Returns the
    ``pantau_model.json`` sections of the heads carried, whose records stay true for ``out_dir``."""
    carried: list[str] = []
    for name, section in HEAD_SECTIONS.items():
        layer = head_layer(src, name)
        target = out_dir / name
        # the attribution head reads the category head's probabilities too: it goes where that head goes
        inputs_kept = section == "category" or "category" in carried
        if layer is not None and layer in unchanged and inputs_kept:
            if (src / name).resolve() != target.resolve():
                shutil.copyfile(src / name, target)
            carried.append(section)
            console.print(f"kept {target}: it reads the {layer} layer, which this model left unchanged")
        elif target.exists():
            target.unlink()
            console.print(
                f"[yellow]removed stale {target}[/] (fitted on other embeddings); retrain it: "
                f"pantau model train --task {section} --out {out_dir}"
            )
    return carried
