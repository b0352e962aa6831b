"""`pantau model soup`: two tiny fine-tunes of the shipped model (layers 0–5 held, as the shipped runs did)
averaged into one model, written and calibrated as a trained model is."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from rich.console import Console
from safetensors import safe_open
from safetensors.numpy import save_file
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.model.attribution import ATTRIBUTION_HEAD_FILE
from pipeline.model.category import CATEGORY_HEAD_FILE
from pipeline.model.data import DEFAULT_MODEL_DIR
from pipeline.model.packed import PACKED_FILE, read_packed
from pipeline.model.sentiment import HEAD_FILE, META_FILE, SentimentModel
from pipeline.model.training.checkpoints import BEST_FILE, CHECKPOINT_FILE
from pipeline.model.training.soup import SoupConfig, SoupError, make_soup
from pipeline.settings import get_settings
from tests.model.tiny import finetune_tiny as _run

TRAINED = "encoder.layer.7.attention.self.query.weight"


@pytest.fixture(scope="module")
def runs(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two runs that differ only by seed, each with its written model and checkpoints."""
    root = tmp_path_factory.mktemp("runs")
    out: dict[str, Any] = {"data": data}
    for name, seed in (("a", 1), ("b", 2)):
        out[name] = _run(
            data, root / name, root / f"ckpt-{name}", max_steps=2, freeze_layers=6, seed=seed, lr=1e-3
        )
        out[f"ckpt-{name}"] = root / f"ckpt-{name}"
    return out


def _soup(runs: dict[str, Any], out: Path, checkpoints: list[Path], **kw: Any) -> dict[str, Any]:
    config = SoupConfig(
        base=DEFAULT_MODEL_DIR,
        checkpoint_dirs=checkpoints,
        out_dir=out,
        valid_files=[runs["data"][1]],
        onnx=False,
        **kw,
    )
    return make_soup(config, Console(file=io.StringIO()))


def test_a_soup_of_one_run_is_that_run(runs: dict[str, Any], tmp_path: Path) -> None:
    """The mean of a run with a copy of itself is the run: same weights, temperature and version."""
    twin = tmp_path / "ckpt-a-again"
    shutil.copytree(runs["ckpt-a"], twin)
    result = _soup(runs, tmp_path / "soup", [runs["ckpt-a"], twin])
    assert result["version"] == runs["a"]["version"]
    assert result["temperature"] == pytest.approx(runs["a"]["temperature"], abs=1e-6)


def test_a_soup_is_the_mean_of_the_runs_weights(runs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "soup"
    result = _soup(runs, out, [runs["ckpt-a"], runs["ckpt-b"]])
    kept = [torch.load(runs[f"ckpt-{n}"] / BEST_FILE, weights_only=True)["model"] for n in "ab"]
    a, b = (k[f"encoder.{TRAINED}"].numpy() for k in kept)
    assert not np.allclose(a, b, atol=1e-4), "two seeds must train apart for a mean to be tested"
    mean = (a + b) / 2
    stored = read_packed(out)[TRAINED]
    step = np.abs(mean).max(axis=1, keepdims=True) / 127.0  # int8 storage: one step per row
    assert np.all(np.abs(stored - mean) <= step / 2 + 1e-7)
    for run in ("a", "b"):  # neither run alone
        assert not np.allclose(stored, read_packed(runs[run]["out_dir"])[TRAINED], atol=1e-6), run
    # the layers below were held by both runs: stored exactly as the base's, so its heads come along
    base = read_packed(DEFAULT_MODEL_DIR)
    assert np.array_equal(
        read_packed(out)["encoder.layer.0.attention.self.query.weight"],
        base["encoder.layer.0.attention.self.query.weight"],
    )
    assert result["heads_carried"] == ["category", "attribution"]
    assert (out / CATEGORY_HEAD_FILE).exists() and (out / ATTRIBUTION_HEAD_FILE).exists()
    assert [i["seed"] for i in result["soup"]["ingredients"]] == [1, 2]
    recorded = SentimentModel.load(out, threads=2).meta["finetune"]
    assert recorded["soup"]["ingredients"][1]["checkpoint_dir"] == str(runs["ckpt-b"])
    assert recorded["temperature"] == result["temperature"] and recorded["heads_from"] is None
    probs = SentimentModel.load(out, threads=2).predict_proba(["jalan rusak parah tidak diperbaiki"])
    assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1.0, atol=1e-5)


def _with_signature(src: Path, dst: Path, **changed: Any) -> Path:
    shutil.copytree(src, dst)
    last = torch.load(dst / CHECKPOINT_FILE, weights_only=True)
    last["signature"] = last["signature"] | changed
    torch.save(last, dst / CHECKPOINT_FILE)
    return dst


def test_runs_that_cannot_be_mixed_are_refused(runs: dict[str, Any], tmp_path: Path) -> None:
    other_start = _with_signature(runs["ckpt-b"], tmp_path / "other-start", source="0" * 32)
    with pytest.raises(SoupError, match="started from another model"):
        _soup(runs, tmp_path / "x", [runs["ckpt-a"], other_start])
    other_frozen = _with_signature(runs["ckpt-b"], tmp_path / "other-frozen", freeze_layers=4)
    with pytest.raises(SoupError, match="freeze_layers = 4"):
        _soup(runs, tmp_path / "y", [runs["ckpt-a"], other_frozen])
    other_depth = _with_signature(runs["ckpt-b"], tmp_path / "other-depth", layers=7)
    with pytest.raises(SoupError, match="layers = 7"):
        _soup(runs, tmp_path / "y", [runs["ckpt-a"], other_depth])
    with pytest.raises(SoupError, match="is missing: not the --checkpoint-dir"):
        _soup(runs, tmp_path / "z", [runs["ckpt-a"], tmp_path])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    with pytest.raises(ValidationError, match="named twice"):
        _soup(runs, tmp_path / "w", [runs["ckpt-a"], runs["ckpt-a"]])
    with pytest.raises(ValidationError, match="at least 2"):
        _soup(runs, tmp_path / "v", [runs["ckpt-a"]])
    with pytest.raises(ValidationError, match="names no validation file's domain"):
        _soup(runs, tmp_path / "u", [runs["ckpt-a"], runs["ckpt-b"]], calibrate_on="indomian")


def _with_other_category_head(model_dir: Path, to: Path) -> Path:
    """A copy of ``model_dir`` whose category head and its record differ (the same layer read)."""
    shutil.copytree(model_dir, to)
    path = to / CATEGORY_HEAD_FILE
    with safe_open(str(path), framework="np") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a mapping
        metadata = f.metadata()
    save_file({k: v + 1.0 for k, v in tensors.items()}, str(path), metadata=metadata)
    meta = json.loads((to / META_FILE).read_text(encoding="utf-8"))
    meta["category"]["C"] = -1.0
    (to / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return to


def test_heads_come_from_the_named_model_only_when_it_reads_the_same_layers(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    both = [runs["ckpt-a"], runs["ckpt-b"]]
    # run b was written from the base with layers 0-5 held: its layers below the topic layer are the base's
    refitted = _with_other_category_head(Path(runs["b"]["out_dir"]), tmp_path / "refitted")
    out = tmp_path / "soup"
    result = _soup(runs, out, both, heads_from=refitted)
    assert result["heads_carried"] == ["category", "attribution"]
    assert (out / CATEGORY_HEAD_FILE).read_bytes() == (refitted / CATEGORY_HEAD_FILE).read_bytes()
    meta = SentimentModel.load(out, threads=2).meta
    assert meta["category"]["C"] == -1.0 and meta["finetune"]["heads_from"] == str(refitted)
    # a model whose lower layers were trained reads other embeddings: refused before anything is written
    moved = tmp_path / "moved"
    _run(runs["data"], moved, tmp_path / "ckpt-moved", max_steps=1, freeze_layers=0, seed=3)
    with pytest.raises(SoupError, match="heads read other embeddings"):
        _soup(runs, tmp_path / "refused", both, heads_from=moved)
    assert not (tmp_path / "refused").exists()
    # runs that trained the topic layer: no head can be carried, and the base's are not copied either
    _run(runs["data"], tmp_path / "moved2", tmp_path / "ckpt-moved2", max_steps=1, freeze_layers=0, seed=4)
    unfrozen = [tmp_path / "ckpt-moved", tmp_path / "ckpt-moved2"]
    with pytest.raises(SoupError, match="trained the topic layer"):
        _soup(runs, tmp_path / "refused2", unfrozen, heads_from=refitted)
    bare = _soup(runs, tmp_path / "bare", unfrozen)
    assert bare["heads_carried"] == []
    assert not (tmp_path / "bare" / CATEGORY_HEAD_FILE).exists()


def test_one_run_with_other_heads_is_that_run_with_those_heads(runs: dict[str, Any], tmp_path: Path) -> None:
    """How a single fine-tune of a base with older heads gets the heads in use: its weights, temperature
    and sentiment head as the run wrote them, the named model's heads and their records."""
    refitted = _with_other_category_head(Path(runs["b"]["out_dir"]), tmp_path / "refitted")
    out = tmp_path / "one"
    result = _soup(runs, out, [runs["ckpt-a"]], heads_from=refitted)
    run_dir = Path(runs["a"]["out_dir"])
    assert result["version"] == runs["a"]["version"]
    assert result["temperature"] == pytest.approx(runs["a"]["temperature"], abs=1e-6)
    for name in (HEAD_FILE, PACKED_FILE):
        assert (out / name).read_bytes() == (run_dir / name).read_bytes(), name
    assert (out / CATEGORY_HEAD_FILE).read_bytes() == (refitted / CATEGORY_HEAD_FILE).read_bytes()
    assert (out / CATEGORY_HEAD_FILE).read_bytes() != (run_dir / CATEGORY_HEAD_FILE).read_bytes()
    recorded = SentimentModel.load(out, threads=2).meta
    assert recorded["category"]["C"] == -1.0
    assert recorded["finetune"]["soup"]["method"].startswith("the run's best.pt")
    assert recorded["finetune"]["soup"]["ingredients"][0]["label_only_domains"] is None


def test_the_command_says_what_is_wrong_in_one_line(runs: dict[str, Any], tmp_path: Path) -> None:
    base = tmp_path / "base"  # a copy, so that a regression could only overwrite the copy
    shutil.copytree(DEFAULT_MODEL_DIR, base)
    args = ["model", "soup", "--base", str(base), "--valid", str(runs["data"][1])]
    alone = ["--checkpoint-dir", str(runs["ckpt-a"]), "--out", str(tmp_path / "o")]
    one = CliRunner().invoke(app, [*args, *alone])
    assert one.exit_code == 2 and "at least 2" in one.output
    other = _with_signature(runs["ckpt-b"], tmp_path / "other", source="0" * 32)
    two = ["--checkpoint-dir", str(runs["ckpt-a"]), "--checkpoint-dir", str(other)]
    refused = CliRunner().invoke(app, [*args, *two, "--out", str(tmp_path / "p")])
    assert refused.exit_code == 2 and "started from another model" in refused.output
    both = ["--checkpoint-dir", str(runs["ckpt-a"]), "--checkpoint-dir", str(runs["ckpt-b"])]
    into_base = CliRunner().invoke(app, [*args, *both, "--out", str(base)])
    assert into_base.exit_code == 2 and "--out must be another directory" in into_base.output
    in_use = CliRunner().invoke(app, [*args, *both, "--out", str(get_settings().model_dir)])
    assert in_use.exit_code == 2 and "the model in use" in in_use.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "p").exists()
