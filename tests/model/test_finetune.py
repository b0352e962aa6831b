"""Training on 16 SmSA texts: fine-tuning kept to a few steps (output loads, checkpoints resume exactly) and
where the frozen-head trainer writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

from pipeline.model.attribution import ATTRIBUTION_HEAD_FILE
from pipeline.model.category import CATEGORY_HEAD_FILE, CategoryModel
from pipeline.model.data import DEFAULT_MODEL_DIR, SMSA_DIR
from pipeline.model.evaluate import evaluate, load_labelled
from pipeline.model.packed import PACKED_FILE
from pipeline.model.sentiment import HEAD_FILE, SentimentModel
from pipeline.model.training.checkpoints import BEST_FILE, CHECKPOINT_FILE
from pipeline.model.training.config import FinetuneConfig
from tests.model.test_transformers_loading import transformers_probabilities
from tests.model.tiny import finetune_tiny as _run


def test_smoke_finetune_writes_a_loadable_model(data: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(data, out, tmp_path / "ckpt", epochs=2, max_steps=3, onnx=True)
    assert result["steps"] == 3
    assert (tmp_path / "ckpt" / CHECKPOINT_FILE).exists()
    # The frozen word embeddings keep their original 4-bit blocks; the trained layers are int8 per row.
    # The share of the update that survives is reported: 0.98 after two real epochs, little after three
    # warm-up steps, whose moves are smaller than one int8 step.
    assert result["encoder"]["tensors"]["q4_unchanged"] == 1
    assert result["encoder"]["tensors"]["int8"] == 6 * SHIPPED_LAYERS
    assert 0.0 <= result["encoder"]["update_retained"] <= 1.0
    for stale in (CATEGORY_HEAD_FILE, ATTRIBUTION_HEAD_FILE):  # the topic layer trained: the heads are stale
        assert not (out / stale).exists(), stale

    model = SentimentModel.load(out, threads=2)
    texts = ["pelayanan samsat cepat dan ramah", "jalan rusak parah tidak diperbaiki"]
    preds = model.predict(texts)
    for p in preds:
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5)
    shipped = json.loads((DEFAULT_MODEL_DIR / "pantau_model.json").read_text(encoding="utf-8"))
    assert model.version == result["version"] != shipped["version"]
    meta = model.meta["finetune"]
    assert meta["steps"] == 3 and meta["data"]["train"][0]["sha256"]
    assert set(model.meta["metrics"]["valid"]) >= {"macro_f1", "ece"}
    assert (out / PACKED_FILE).stat().st_size < 70e6
    # The onnx-int8 backend was exported from these new weights and agrees with torch on the labels.
    fast = SentimentModel.load(out, backend="onnx-int8", threads=2)
    assert [p.label for p in fast.predict(texts)] == [p.label for p in preds]
    # The export repeats none of the int8 matrices: fused QKV, attention output and both FFN matrices of
    # every layer are read back from encoder.q4.safetensors when the session is built.
    assert result["onnx"]["shared_int8_matrices"] == 4 * SHIPPED_LAYERS
    # Temperature and recorded metrics come from the backend that ships, not from the fp32 trainer.
    assert meta["calibrated_on"] == "onnx-int8"
    v_texts, v_labels = load_labelled(data[1])
    valid = model.meta["metrics"]["valid"]
    shipped_valid = evaluate(fast, v_texts, v_labels)
    assert valid["macro_f1"] == pytest.approx(shipped_valid.macro_f1, abs=1e-3)
    assert valid["ece"] == pytest.approx(shipped_valid.ece, abs=2e-3)
    # Plain transformers loads the new directory too, with the loader code written into it.
    probabilities = transformers_probabilities(out, texts)
    np.testing.assert_allclose(probabilities, model.predict_proba(texts), atol=1e-5)


def test_a_fine_tune_that_freezes_the_layers_up_to_the_topic_layer_keeps_the_heads_that_read_it(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    """The shipped category and attribution heads read the topic layer (layer 6), so a sentiment fine-tune
    with ``--freeze-layers 6`` leaves their input, and with it their decisions, exactly as they were."""
    assert CategoryModel.load(DEFAULT_MODEL_DIR).layer == "topic"
    out = tmp_path / "out"
    result = _run(data, out, tmp_path / "ckpt", freeze_layers=6, max_steps=2)
    assert result["heads_carried"] == ["category", "attribution"]
    shipped_meta = json.loads((DEFAULT_MODEL_DIR / "pantau_model.json").read_text(encoding="utf-8"))
    meta = json.loads((out / "pantau_model.json").read_text(encoding="utf-8"))
    for name, section in ((CATEGORY_HEAD_FILE, "category"), (ATTRIBUTION_HEAD_FILE, "attribution")):
        assert (out / name).read_bytes() == (DEFAULT_MODEL_DIR / name).read_bytes()
        assert meta[section] == shipped_meta[section]
    texts = ["banjir di lebak warga mengungsi", "antrean samsat serang lama sekali", "pdam mati tiga hari"]
    last_before, topic_before = SentimentModel.load(DEFAULT_MODEL_DIR, threads=2).embed_with_topics(texts)
    last_after, topic_after = SentimentModel.load(out, threads=2).embed_with_topics(texts)
    np.testing.assert_allclose(topic_after, topic_before, atol=1e-6)
    assert not np.allclose(last_after, last_before, atol=1e-6)  # the sentiment side did train

    # float16 storage rewrites the frozen layers' int8 rows a little: the topic layer moves, nothing carries
    mixed = _run(
        data, tmp_path / "mixed", tmp_path / "ckpt-mixed", freeze_layers=6, max_steps=1, storage="mixed"
    )
    assert mixed["heads_carried"] == []
    assert not (tmp_path / "mixed" / CATEGORY_HEAD_FILE).exists()


def test_resume_continues_at_the_saved_step(data: tuple[Path, Path], tmp_path: Path) -> None:
    kw: dict[str, Any] = {"batch_size": 4, "storage": "q4"}  # 4 steps per epoch: stop and resume mid-epoch
    straight = _run(data, tmp_path / "a", tmp_path / "ckpt_a", max_steps=4, **kw)
    first = _run(data, tmp_path / "b", tmp_path / "ckpt_b", max_steps=2, **kw)
    assert first["steps"] == 2 and first["resumed_from"] is None
    resumed = _run(data, tmp_path / "b", tmp_path / "ckpt_b", max_steps=4, **kw)
    assert resumed["resumed_from"] == 2
    assert resumed["steps"] == 4
    # Same batches, dropout masks, optimizer moments and schedule: the losses match the unbroken run.
    assert resumed["losses"] == pytest.approx(straight["losses"], rel=1e-4)
    ckpt = torch.load(tmp_path / "ckpt_b" / CHECKPOINT_FILE, weights_only=True)
    assert ckpt["step"] == 4
    assert {int(s["step"]) for s in ckpt["optimizer"]["state"].values()} == {4}

    fresh = _run(data, tmp_path / "c", tmp_path / "ckpt_b", max_steps=1, resume=False, **kw)
    assert fresh["resumed_from"] is None and fresh["steps"] == 1
    assert fresh["losses"] == pytest.approx(straight["losses"][:1], rel=1e-4)


def test_resume_refuses_a_different_run(data: tuple[Path, Path], tmp_path: Path) -> None:
    _run(data, tmp_path / "a", tmp_path / "ckpt", max_steps=1, storage="q4")
    with pytest.raises(ValueError, match="different run"):
        _run(data, tmp_path / "a", tmp_path / "ckpt", max_steps=1, storage="q4", lr=1e-4)


def test_recorded_scores_are_those_of_the_stored_weights(data: tuple[Path, Path], tmp_path: Path) -> None:
    """4-bit storage changes every layer matrix: what pantau_model.json records must be what
    `pantau model eval --backend fp32` gets from the files, not what the weights in memory scored."""
    out = tmp_path / "out"
    _run(data, out, tmp_path / "ckpt", max_steps=2, storage="q4", test_files={"valid_again": data[1]})
    model = SentimentModel.load(out, backend="fp32", threads=2)
    texts, labels = load_labelled(data[1])
    report = evaluate(model, texts, labels)
    for name in ("valid", "valid_again"):
        recorded = model.meta["metrics"][name]
        assert recorded["confusion"] == report.confusion
        assert recorded["ece"] == pytest.approx(report.ece, abs=1e-4)
        assert recorded["macro_f1"] == pytest.approx(report.macro_f1, abs=1e-4)


def test_export_without_int8_matrices_keeps_its_weights_in_the_onnx_file(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = _run(data, out, tmp_path / "ckpt", max_steps=1, storage="q4", onnx=True)
    assert "int8" not in result["encoder"]["tensors"]
    assert result["onnx"]["shared_int8_matrices"] == 0
    assert result["onnx"]["mb"] > 5  # the int8 weights are inside the graph
    texts = ["pelayanan samsat cepat dan ramah", "jalan rusak parah tidak diperbaiki"]
    fp32, onnx = (
        SentimentModel.load(out, backend=b, threads=2).predict_proba(texts) for b in ("fp32", "onnx-int8")
    )
    # One step then re-quantising every matrix to 4 bits leaves near ties (0.43 against 0.41), so labels may
    # differ; int8 activations move a probability by at most about 0.07 here, weights missing from the graph
    # by far more.
    np.testing.assert_allclose(onnx, fp32, atol=0.1)


def test_fp16_export_loads_with_from_pretrained(tmp_path: Path) -> None:
    from transformers import BertModel

    from pipeline.model.encoder import load_encoder
    from pipeline.model.training.storage import save_encoder

    torch.set_num_threads(2)
    encoder = load_encoder(DEFAULT_MODEL_DIR)
    (tmp_path / "config.json").write_bytes((DEFAULT_MODEL_DIR / "config.json").read_bytes())
    info = save_encoder(encoder, DEFAULT_MODEL_DIR, tmp_path, "fp16")
    assert info["file"] == "model.safetensors" and not (tmp_path / PACKED_FILE).exists()
    again = BertModel.from_pretrained(str(tmp_path), local_files_only=True, add_pooling_layer=False).float()
    ids = torch.tensor([[0, 1000, 2000, 2]])
    with torch.inference_mode():
        a = encoder(input_ids=ids).last_hidden_state
        b = again.eval()(input_ids=ids).last_hidden_state
    assert torch.allclose(a, b, atol=2e-2)


SHIPPED_LAYERS = int(
    json.loads((DEFAULT_MODEL_DIR / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
)


@pytest.fixture
def low_topic_layer(monkeypatch: pytest.MonkeyPatch) -> int:
    """Topic layer 4, so a student one layer shallower than the shipped model keeps it whatever the depth."""
    import pipeline.model.encoder

    monkeypatch.setattr(pipeline.model.encoder, "TOPIC_LAYER", 4)
    return 4


def test_distilled_student_is_shallower_and_keeps_the_topic_layer(
    data: tuple[Path, Path], tmp_path: Path, low_topic_layer: int
) -> None:
    from pipeline.model.modeling_pantau import packed_state_dict
    from pipeline.model.training.targets import teacher_targets

    n = SHIPPED_LAYERS - 1
    out, ckpt = tmp_path / "student", tmp_path / "ckpt"
    kw: dict[str, Any] = {
        "layers": n,
        "freeze_layers": 3,
        "teachers": [DEFAULT_MODEL_DIR],
        "teacher_backend": "fp32",  # the shipped ONNX graph outputs the unpatched topic layer
        "max_steps": 2,
    }
    result = _run(data, out, ckpt, onnx=True, **kw)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["num_hidden_layers"] == n
    assert result["encoder"]["tensors"]["int8"] == n * 6  # six matrices per layer, the top one dropped
    shipped = json.loads((DEFAULT_MODEL_DIR / "pantau_model.json").read_text(encoding="utf-8"))
    assert result["teacher"]["version"] == shipped["version"] and result["layers"] == n
    assert result["start_head"] is None, "a distilled student starts from the teacher's head"

    # Frozen layers come back bit-for-bit (their int8 rows re-quantise to themselves); trained ones move.
    before, after = packed_state_dict(DEFAULT_MODEL_DIR), packed_state_dict(out)
    assert not any(k.startswith(f"encoder.layer.{n}.") for k in after)
    for name in ("encoder.layer.0.output.dense.weight", "encoder.layer.2.attention.self.query.weight"):
        assert torch.allclose(before[name], after[name], atol=1e-6)
    top = f"encoder.layer.{n - 1}.output.dense.bias"
    assert not torch.equal(before[top], after[top])

    # Both backends load the student; its topic-layer embedding stays the teacher's (int8 activations
    # alone cost about 0.98 cosine at this layer).
    texts = ["banjir di lebak warga mengungsi", "antrean samsat serang lama sekali", "pdam mati tiga hari"]
    _, anchor = SentimentModel.load(DEFAULT_MODEL_DIR, backend="fp32", threads=2).embed_with_topics(texts)
    for backend, floor in (("fp32", 0.99), ("onnx-int8", 0.96)):
        student = SentimentModel.load(out, backend=backend, threads=2)  # type: ignore[arg-type]
        _, topic = student.embed_with_topics(texts)
        assert (topic * anchor).sum(1).min() > floor, f"topic layer {low_topic_layer} moved ({backend})"
        assert all(sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5) for p in student.predict(texts))

    # A resumed run reuses the cached teacher pass instead of running the teacher again.
    (cache,) = ckpt.glob("teacher-*.npz")
    cached = cache.stat().st_mtime_ns
    again = _run(data, out, ckpt, onnx=False, **(kw | {"max_steps": 3}))
    assert again["resumed_from"] == 2
    assert cache.stat().st_mtime_ns == cached

    # An ensemble: soft targets are the teachers' mean, anchors the first teacher's.
    labels = ["negative", "neutral", "positive"]
    one = [
        teacher_targets([t], texts, labels, tmp_path / "tcache", Console(), backend="fp32", threads=2)
        for t in (DEFAULT_MODEL_DIR, out)
    ]
    probs, pairs, versions = teacher_targets(
        [DEFAULT_MODEL_DIR, out], texts, labels, tmp_path / "tcache", Console(), backend="fp32", threads=2
    )
    assert not np.allclose(one[0][0], one[1][0], atol=1e-4), "the two teachers must disagree to test a mean"
    np.testing.assert_allclose(probs, (one[0][0] + one[1][0]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(pairs, one[0][1])
    assert versions == [shipped["version"], again["version"]]


def test_unlabelled_comments_train_on_the_teachers_targets(data: tuple[Path, Path], tmp_path: Path) -> None:
    unlabelled = tmp_path / "dkk_semarang" / "unlabelled.csv"
    unlabelled.parent.mkdir()
    comments = ["vaksin booster di puskesmas mana ya min", "makasih infonya", "antrinya lama bgt", "mantap"]
    unlabelled.write_text("text\n" + "\n".join(comments) + "\n", encoding="utf-8")
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    kw: dict[str, Any] = {
        "teachers": [DEFAULT_MODEL_DIR],
        "teacher_backend": "fp32",
        "unlabelled_files": [unlabelled],
        "domain_sampling": {"weights": {"dkk_semarang_unlabelled": 1.0, data[0].parent.name: 4.0}},
        "anchor_weight": 0.0,
        "freeze_layers": 6,
        "max_steps": 2,
    }
    result = _run(data, out, ckpt, **kw)
    assert result["data"]["unlabelled"][0]["sha256"] == hashlib.sha256(unlabelled.read_bytes()).hexdigest()
    assert result["domain_sampling"]["dkk_semarang_unlabelled"] == {
        "rows": 4,
        "weight": 1.0,
        "epoch_share": 0.2,
    }
    assert result["teacher"]["anchor_weight"] == 0.0
    (cache,) = ckpt.glob("teacher-*.npz")
    assert np.load(cache)["probs"].shape == (16 + 4, 3), "the teacher scored the unlabelled rows too"
    # Another unlabelled file is another run: its checkpoint is not resumed.
    unlabelled.write_text("text\nbanjir lagi\n", encoding="utf-8")
    with pytest.raises(ValueError, match="different run"):
        _run(data, out, ckpt, **kw)


def test_student_must_keep_the_topic_layer(data: tuple[Path, Path], tmp_path: Path) -> None:
    from pipeline.model.encoder import TOPIC_LAYER

    with pytest.raises(ValueError, match="above the topic layer"):
        _run(data, tmp_path / "out", tmp_path / "ckpt", layers=TOPIC_LAYER, max_steps=1)


def test_truncated_without_teacher_starts_from_a_head_fitted_on_its_own_output(
    data: tuple[Path, Path], tmp_path: Path, low_topic_layer: int
) -> None:
    n = SHIPPED_LAYERS - 1
    result = _run(data, tmp_path / "out", tmp_path / "ckpt", layers=n, max_steps=1)
    assert result["layers"] == n and result["teacher"] is None
    # The source head reads the top layer; the student starts from a head fitted on its own output.
    assert result["start_head"]["fitted_on_layers"] == n
    assert 0.0 < result["start_head"]["valid_macro_f1"] <= 1.0
    model = SentimentModel.load(tmp_path / "out", backend="fp32", threads=2)
    assert model.meta["finetune"]["layers"] == n
    preds = model.predict(["antrean samsat lama", "pelayanan cepat"])
    assert len(preds) == 2 and all(sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5) for p in preds)


def test_a_checkpoint_without_its_best_weights_still_finishes(
    data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.model.training.loop

    ckpt = tmp_path / "ckpt"
    kw: dict[str, Any] = {"max_steps": 1, "storage": "q4"}
    _run(data, tmp_path / "a", ckpt, **kw)
    # A --no-resume start deletes best.pt: if it stops before its first checkpoint, an older last.pt with
    # a best_f1 no weights match must not make the next run fail at the end.
    (ckpt / BEST_FILE).unlink()
    resumed = _run(data, tmp_path / "a", ckpt, **kw)
    assert resumed["resumed_from"] == 1 and (ckpt / BEST_FILE).exists()

    def stop(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("stopped before the first checkpoint")

    monkeypatch.setattr(pipeline.model.training.loop, "collate", stop)
    with pytest.raises(RuntimeError, match="stopped"):
        _run(data, tmp_path / "a", ckpt, resume=False, **kw)
    assert not (ckpt / CHECKPOINT_FILE).exists() and not (ckpt / BEST_FILE).exists()


def test_the_written_description_leaves_out_the_sources_training(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for path in DEFAULT_MODEL_DIR.iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    meta = json.loads((source / "pantau_model.json").read_text(encoding="utf-8"))
    meta |= {"backend_at_training": "fp32", "category": {"valid": {"accuracy": 0.9}}}
    (source / "pantau_model.json").write_text(json.dumps(meta), encoding="utf-8")
    _run(data, tmp_path / "out", tmp_path / "ckpt", source=source, max_steps=1, storage="q4")
    written = json.loads((tmp_path / "out" / "pantau_model.json").read_text(encoding="utf-8"))
    assert "backend_at_training" not in written and "category" not in written
    assert written["base"] == meta["base"] and written["finetune"]["source_model"] == meta["version"]


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache dir and a model dir in ``tmp_path``: a wrong default never writes into the shipped model."""
    from pipeline.settings import get_settings

    monkeypatch.setenv("PANTAU_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PANTAU_MODEL_DIR", str(tmp_path / "shipped"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_frozen_head_trainer_writes_to_the_cache_and_drops_a_stale_category_head(
    data: tuple[Path, Path], settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import pipeline.model.train
    from pipeline.cli import app

    monkeypatch.setattr(pipeline.model.train, "default_test_files", dict)  # held-out sets take minutes
    frozen = settings_env / "cache" / "frozen"
    frozen.mkdir(parents=True)
    (frozen / CATEGORY_HEAD_FILE).write_bytes(b"fitted on other embeddings")
    args = [
        "model",
        "train",
        "--base",
        str(DEFAULT_MODEL_DIR),
        "--data",
        str(data[0]),
        "--valid",
        str(data[1]),
    ]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert (frozen / HEAD_FILE).exists() and not (frozen / CATEGORY_HEAD_FILE).exists()
    assert f"pantau model train --task category --out {frozen}" in " ".join(result.output.split())
    assert not (settings_env / "shipped").exists()


def test_the_command_line_fine_tunes_with_the_options_it_was_given(
    data: tuple[Path, Path], settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import pipeline.model.train
    from pipeline.cli import app

    monkeypatch.setattr(pipeline.model.train, "default_test_files", dict)  # held-out sets take minutes
    out, ckpt = settings_env / "ft", settings_env / "ckpt"
    args = ["model", "train", "--epochs", "1", "--max-steps", "1", "--base", str(DEFAULT_MODEL_DIR)]
    args += [
        "--data",
        str(data[0]),
        "--valid",
        str(data[1]),
        "--out",
        str(out),
        "--checkpoint-dir",
        str(ckpt),
    ]
    args += ["--lr", "1e-4", "--batch-size", "4", "--max-length", "24", "--seed", "5"]
    refused = CliRunner().invoke(app, [*args, "--domain-weight", "nusax=2"], env={"COLUMNS": "200"})
    assert refused.exit_code == 2 and "name no training file's domain: nusax" in refused.output
    assert not ckpt.exists(), "refused before anything was loaded or written"

    result = CliRunner().invoke(app, [*args, "--balance-domains"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"pantau model train --task attribution --out {out}" in said  # the last layers trained: refit both
    recorded = json.loads((out / "pantau_model.json").read_text(encoding="utf-8"))["finetune"]
    assert (recorded["lr"], recorded["batch_size"], recorded["max_length"], recorded["seed"]) == (
        1e-4,
        4,
        24,
        5,
    )
    assert recorded["steps"] == 1 and recorded["calibrated_on"] == "onnx-int8"
    assert recorded["domain_sampling"] == {
        data[0].parent.name: {"rows": 16, "weight": 1.0, "epoch_share": 1.0}
    }


def test_calibrate_on_fits_the_temperature_on_that_validation_domain_alone(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    """With two validation domains, ``calibrate_on="a"`` gives the temperature a run validated on ``a``
    alone gets (one step, so both runs keep the same weights); without it both domains weigh in."""
    lines = (SMSA_DIR / "valid_preprocess.tsv").read_text(encoding="utf-8").splitlines()
    turn = {"positive": "negative", "negative": "neutral", "neutral": "positive"}
    wrong = [f"{text}\t{turn[label]}" for text, label in (row.rsplit("\t", 1) for row in lines[:4])]
    a, b = tmp_path / "a" / "valid.tsv", tmp_path / "b" / "valid.tsv"  # a: half mislabelled, so T > 1
    for path, rows in ((a, wrong + lines[4:8]), (b, lines[-40:])):
        path.parent.mkdir()
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    one_step = {"max_steps": 1, "seed": 3}
    on_a = _run(
        (data[0], a), tmp_path / "on_a", tmp_path / "c1", valid_files=[a, b], calibrate_on="a", **one_step
    )
    only_a = _run((data[0], a), tmp_path / "only_a", tmp_path / "c2", **one_step)
    both = _run((data[0], a), tmp_path / "both", tmp_path / "c3", valid_files=[a, b], **one_step)
    assert on_a["temperature"] == pytest.approx(only_a["temperature"], rel=1e-6)
    assert both["temperature"] != pytest.approx(on_a["temperature"], rel=1e-3)
    assert on_a["temperature_domain"] == "a"
    with pytest.raises(ValueError, match="names no validation file's domain"):
        FinetuneConfig(
            model_in=DEFAULT_MODEL_DIR,
            out_dir=tmp_path / "x",
            train_files=[data[0]],
            valid_files=[a, b],
            checkpoint_dir=tmp_path / "c4",
            epochs=1,
            calibrate_on="twitter",
        )


def test_the_teacher_pass_encodes_each_text_once_and_keeps_pairs_only_for_anchors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.model.training.targets import teacher_targets

    encoded: list[str] = []
    real = SentimentModel.embed_with_topics

    def counting(self: SentimentModel, texts: Any, progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
        encoded.extend(texts)
        return real(self, texts, progress)

    monkeypatch.setattr(SentimentModel, "embed_with_topics", counting)
    labels = ["negative", "neutral", "positive"]
    cache = tmp_path / "cache"

    def targets(texts: list[str], anchors: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
        return teacher_targets(
            [DEFAULT_MODEL_DIR], texts, labels, cache, Console(), backend="fp32", threads=2, anchors=anchors
        )

    first = ["pdam mati tiga hari", "makasih samsat cepat", "pdam mati tiga hari"]
    probs, pairs, _ = targets(first, anchors=False)
    assert encoded == first[:2] and pairs.shape == (3, 0, 0)  # a repeated text is encoded once
    np.testing.assert_array_equal(probs[0], probs[2])
    (file,) = cache.glob("teacher-*.npz")
    with np.load(file) as kept:
        assert "pairs" not in kept.files and len(kept["digests"]) == 2
    # more texts (an --unlabelled file added): only the new one is encoded, the others come from the cache
    more = [*first, "jalan rusak parah"]
    again, _, _ = targets(more, anchors=False)
    assert encoded == [*first[:2], "jalan rusak parah"]
    np.testing.assert_array_equal(again[:3], probs)
    expected = SentimentModel.load(DEFAULT_MODEL_DIR, backend="fp32", threads=2).predict_proba(more)
    np.testing.assert_allclose(again, expected, atol=1e-5)
    # the cache kept no pairs: a run that anchors encodes everything once more, and keeps them from then on
    encoded.clear()
    probs, pairs, _ = targets(more, anchors=True)
    assert encoded == more[:2] + more[3:] and pairs.shape == (4, 2, pairs.shape[2]) and pairs.shape[2] > 0
    np.testing.assert_allclose(probs, again, atol=1e-6)
    encoded.clear()
    _, pairs_again, _ = targets(list(reversed(more)), anchors=True)
    assert encoded == [] and np.array_equal(pairs_again, pairs[::-1])
    # a run without anchors still keeps the pairs of its new texts once the cache holds pairs
    newest = [*more, "antrean dukcapil lama"]
    targets(newest, anchors=False)
    assert encoded == ["antrean dukcapil lama"]
    _, pairs_all, _ = targets(newest, anchors=True)
    assert encoded == ["antrean dukcapil lama"]  # nothing encoded again
    last, topic = real(SentimentModel.load(DEFAULT_MODEL_DIR, backend="fp32", threads=2), newest[-1:])
    np.testing.assert_allclose(pairs_all[-1], np.stack([last[0], topic[0]]), atol=1e-5)
    # probabilities come in the order of the labels asked for
    reordered, _, _ = teacher_targets(
        [DEFAULT_MODEL_DIR], newest, labels[::-1], cache, Console(), backend="fp32", threads=2
    )
    np.testing.assert_array_equal(
        reordered,
        teacher_targets([DEFAULT_MODEL_DIR], newest, labels, cache, Console(), backend="fp32", threads=2)[0][
            :, ::-1
        ],
    )
    # a damaged cache file is not trusted: everything is encoded again
    file.write_bytes(b"not a cache")
    encoded.clear()
    targets(first, anchors=False)
    assert encoded == first[:2]
