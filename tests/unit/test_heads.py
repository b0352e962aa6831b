"""Which encoder output the category and attribution heads read, and which heads a new model keeps."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from pipeline.model.attribution import ATTRIBUTION_HEAD_FILE, AttributionModel, check_same_layer
from pipeline.model.category import CATEGORIES, CATEGORY_HEAD_FILE, CategoryModel
from pipeline.model.heads import remove_head, settle_heads
from pipeline.model.layers import EmbeddingLayer, pick_layer, read_layer
from pipeline.model.sentiment import META_FILE, Head, write_meta

DIM = 4


def _write_heads(model_dir: Path, category: EmbeddingLayer, attribution: EmbeddingLayer) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    head = Head(
        rng.normal(size=(len(CATEGORIES), DIM)).astype(np.float32), np.zeros(len(CATEGORIES)), CATEGORIES
    )
    CategoryModel(head, 0.5, layer=category).save(model_dir / CATEGORY_HEAD_FILE)
    AttributionModel(rng.normal(size=DIM).astype(np.float32), 0.1, 0.4, 0.6, layer=attribution).save(
        model_dir / ATTRIBUTION_HEAD_FILE
    )


def _settle(src: Path, out: Path, unchanged: set[EmbeddingLayer]) -> tuple[list[str], str]:
    sink = io.StringIO()
    carried = settle_heads(src, out, frozenset(unchanged), Console(file=sink, width=300))
    return carried, sink.getvalue()


def test_a_head_records_its_layer_and_one_without_reads_the_last() -> None:
    assert read_layer({}, Path("h")) == "last"
    assert read_layer({"embedding_layer": "topic"}, Path("h")) == "topic"
    with pytest.raises(ValueError, match="h: embedding_layer 'layer7'"):
        read_layer({"embedding_layer": "layer7"}, Path("h"))
    last, topic = np.zeros((2, DIM)), np.ones((2, DIM))
    assert pick_layer("topic", last, topic) is topic and pick_layer("last", last, topic) is last


def test_heads_round_trip_their_layer(tmp_path: Path) -> None:
    _write_heads(tmp_path, "topic", "last")
    assert CategoryModel.load(tmp_path).layer == "topic"
    attribution = AttributionModel.load(tmp_path)
    assert attribution is not None and attribution.layer == "last"


def test_heads_on_an_unchanged_layer_carry_over_and_the_others_are_removed(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _write_heads(src, "topic", "topic")
    out.mkdir()
    carried, said = _settle(src, out, {"topic"})
    assert carried == ["category", "attribution"]
    for name in (CATEGORY_HEAD_FILE, ATTRIBUTION_HEAD_FILE):
        assert (out / name).read_bytes() == (src / name).read_bytes()
    assert "it reads the topic layer" in said

    # a fine-tune that moved the topic layer: both heads in the new model are stale and removed
    carried, said = _settle(src, out, set())
    assert (
        carried == []
        and not (out / CATEGORY_HEAD_FILE).exists()
        and not (out / ATTRIBUTION_HEAD_FILE).exists()
    )
    for task in ("category", "attribution"):
        assert f"pantau model train --task {task} --out {out}" in said


def test_the_attribution_head_goes_where_the_category_head_goes(tmp_path: Path) -> None:
    """It reads the category head's probabilities: with that head refitted, it is stale too."""
    src, out = tmp_path / "src", tmp_path / "out"
    _write_heads(src, "last", "topic")
    _write_heads(out, "last", "topic")
    carried, said = _settle(src, out, {"topic"})
    assert carried == []
    assert not (out / CATEGORY_HEAD_FILE).exists() and not (out / ATTRIBUTION_HEAD_FILE).exists()
    assert f"pantau model train --task attribution --out {out}" in said


def test_an_unreadable_head_is_not_carried_and_does_not_stop_the_run(tmp_path: Path) -> None:
    """A fine-tune has trained for an hour when the heads are settled: a broken source head costs that head
    only."""
    src, out = tmp_path / "src", tmp_path / "out"
    _write_heads(src, "topic", "topic")
    (src / CATEGORY_HEAD_FILE).write_bytes(b"not a safetensors file")
    out.mkdir()
    carried, said = _settle(src, out, {"topic"})
    assert carried == [] and "not carried over" in said
    assert not (out / CATEGORY_HEAD_FILE).exists() and not (out / ATTRIBUTION_HEAD_FILE).exists()
    # with nothing unchanged, the source heads are not even read
    carried, said = _settle(src, out, set())
    assert carried == [] and "not carried over" not in said


def test_only_the_heads_on_the_unchanged_layer_are_carried(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _write_heads(src, "topic", "last")
    out.mkdir()
    carried, _ = _settle(src, out, {"topic"})
    assert carried == ["category"] and (out / CATEGORY_HEAD_FILE).exists()
    assert not (out / ATTRIBUTION_HEAD_FILE).exists()


def test_removing_a_stale_head_drops_its_record_too(tmp_path: Path) -> None:
    _write_heads(tmp_path, "topic", "topic")
    write_meta(tmp_path, {"version": "v", "category": {"C": 64}, "attribution": {"C": 0.25}})
    sink = io.StringIO()
    remove_head(tmp_path, ATTRIBUTION_HEAD_FILE, Console(file=sink, width=300))
    assert not (tmp_path / ATTRIBUTION_HEAD_FILE).exists()
    meta = json.loads((tmp_path / META_FILE).read_text(encoding="utf-8"))
    assert meta == {"version": "v", "category": {"C": 64}}
    assert f"pantau model train --task attribution --out {tmp_path}" in sink.getvalue()


def test_an_attribution_head_on_another_layer_than_the_category_head_is_refused(tmp_path: Path) -> None:
    _write_heads(tmp_path, "topic", "last")
    category, attribution = CategoryModel.load(tmp_path), AttributionModel.load(tmp_path)
    with pytest.raises(
        ValueError, match="attribution head reads the last layer and the category head the topic"
    ):
        check_same_layer(category.layer, attribution)
    check_same_layer(category.layer, None)  # no attribution head: agencies from the gazetteer alone
