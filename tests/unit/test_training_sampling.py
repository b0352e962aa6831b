"""Sampling balanced by domain (off by default), the temperature weighted by domain, and the validation of a
fine-tuning config."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.model.data import DATA_DIR, DEFAULT_MODEL_DIR
from pipeline.model.train import fit_temperature
from pipeline.model.training.batching import domain_pool, epoch_batches
from pipeline.model.training.checkpoints import run_signature
from pipeline.model.training.config import FinetuneConfig, domain_of, unlabelled_domain
from pipeline.model.training.finetune import label_only_targets

DOMAINS = ["smsa"] * 90 + ["indomain"] * 10


def _count(pool: np.ndarray) -> Counter[str]:
    return Counter(DOMAINS[i] for i in pool)


def test_equal_shares_repeat_the_small_domain_and_subsample_the_large_one() -> None:
    pool = domain_pool(DOMAINS, {}, seed=13, epoch=0)
    assert len(pool) == len(DOMAINS)  # an epoch keeps its length
    assert _count(pool) == {"smsa": 50, "indomain": 50}
    small = Counter(int(i) for i in pool if DOMAINS[i] == "indomain")
    assert set(small.values()) == {5}, "whole passes over the small domain, each row five times"
    large = [int(i) for i in pool if DOMAINS[i] == "smsa"]
    assert len(set(large)) == 50, "the large domain is subsampled without repeats"


def test_weights_set_the_shares_and_the_counts_add_up() -> None:
    assert _count(domain_pool(DOMAINS, {"smsa": 3.0}, seed=13, epoch=0)) == {"smsa": 75, "indomain": 25}
    three = ["a"] * 4 + ["b"] * 3 + ["c"] * 3
    pool = domain_pool(three, {}, seed=1, epoch=0)
    assert len(pool) == 10 and sorted(Counter(three[i] for i in pool).values()) == [3, 3, 4]


def test_the_draw_is_a_function_of_seed_and_epoch() -> None:
    a, b = domain_pool(DOMAINS, {}, 13, 2), domain_pool(DOMAINS, {}, 13, 2)
    np.testing.assert_array_equal(a, b)  # a resumed run rebuilds the same epoch
    assert not np.array_equal(np.sort(a), np.sort(domain_pool(DOMAINS, {}, 13, 3))), "a new draw each epoch"


def test_without_a_pool_the_batches_are_those_of_every_row_once() -> None:
    lengths = np.random.default_rng(0).integers(5, 40, size=100)
    plain = epoch_batches(lengths, 8, 13, 1)
    pooled = epoch_batches(lengths, 8, 13, 1, pool=np.arange(100))
    assert [b.tolist() for b in plain] == [b.tolist() for b in pooled]
    assert sorted(int(i) for b in plain for i in b) == list(range(100))
    balanced = epoch_batches(lengths, 8, 13, 1, pool=domain_pool(DOMAINS, {}, 13, 1))
    assert len(balanced) == len(plain)


def test_a_training_files_domain_is_its_directory() -> None:
    assert domain_of(Path("data/sentiment/smsa/train_preprocess.tsv")) == "smsa"
    assert domain_of(Path("data/indomain/train.jsonl")) == "indomain"


def _config(tmp_path: Path, **kw: object) -> FinetuneConfig:
    base = {
        "model_in": tmp_path,
        "out_dir": tmp_path / "out",
        "train_files": [Path("data/sentiment/smsa/train_preprocess.tsv"), Path("data/indomain/train.jsonl")],
        "valid_files": [Path("data/indomain/valid.jsonl")],
        "checkpoint_dir": tmp_path / "ckpt",
        "epochs": 1,
    }
    return FinetuneConfig.model_validate(base | kw)


def test_config_defaults_leave_sampling_off_and_refuse_what_cannot_run(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.domain_sampling is None and config.file_domains() == ["smsa", "indomain"]
    balanced = _config(tmp_path, domain_sampling={"weights": {"indomain": 2}})
    assert balanced.domain_sampling is not None and balanced.domain_sampling.weights == {"indomain": 2.0}
    for kw, message in (
        ({"epochs": 0}, "0 means the frozen-head trainer"),
        ({"domain_sampling": {"weights": {"nusax": 1}}}, "name no training file's domain: nusax"),
        ({"domain_sampling": {"weights": {"smsa": 0}}}, "must be > 0"),
        ({"domains": ["only-one"]}, "1 domains for 2 training files"),
        ({"lr": 0}, "greater than 0"),
        ({"learning_rate": 1e-4}, "Extra inputs are not permitted"),
    ):
        with pytest.raises(ValidationError, match=message):
            _config(tmp_path, **kw)


def test_unlabelled_rows_are_a_domain_of_their_own_and_need_a_teacher(tmp_path: Path) -> None:
    unlabelled = DATA_DIR / "sentiment" / "dkk_semarang" / "unlabelled.csv"
    assert unlabelled_domain(unlabelled) == "dkk_semarang_unlabelled"
    with pytest.raises(ValidationError, match="name a teacher too"):
        _config(tmp_path, unlabelled_files=[unlabelled])
    config = _config(
        tmp_path,
        unlabelled_files=[unlabelled],
        teachers=[tmp_path],
        domain_sampling={"weights": {"dkk_semarang_unlabelled": 0.5}},
    )
    assert config.file_domains() == ["smsa", "indomain", "dkk_semarang_unlabelled"]
    for args, expected in (
        (["--unlabelled", str(unlabelled)], "only apply with --epochs"),
        (["--epochs", "1", "--unlabelled", str(unlabelled)], "only apply with --teacher"),
        (["--epochs", "1", "--anchor-weight", "0"], "only apply with --teacher"),
        (
            ["--epochs", "1", "--teacher", ".", "--unlabelled", str(DATA_DIR / "indomain" / "valid.jsonl")],
            "labelled row",
        ),
    ):
        result = CliRunner().invoke(app, ["model", "train", *args], env={"COLUMNS": "200"})
        assert result.exit_code == 2, result.output
        assert expected in " ".join(result.output.split()), result.output


def test_label_only_rows_take_their_labels_as_targets_and_the_rest_keep_the_teachers() -> None:
    teachers = np.array([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]], np.float32)
    probs = teachers.copy()
    labels = ["negative", "negative", None, "positive"]
    domains = ["augmented", "indomain", "dkk_semarang_unlabelled", "augmented"]
    index = {"negative": 0, "neutral": 1, "positive": 2}
    label_only_targets(probs, labels, domains, ["augmented"], index)
    assert probs[0].tolist() == [1.0, 0.0, 0.0] and probs[3].tolist() == [0.0, 0.0, 1.0]
    assert np.array_equal(probs[1:3], teachers[1:3])


def test_label_only_domains_need_a_teacher_and_a_labelled_training_domain(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="name a teacher"):
        _config(tmp_path, label_only_domains=["indomain"])
    with pytest.raises(ValidationError, match="name no labelled training file's domain: augmented"):
        _config(tmp_path, label_only_domains=["augmented"], teachers=[tmp_path])
    config = _config(tmp_path, label_only_domains=["indomain"], teachers=[tmp_path])
    assert config.label_only_domains == ["indomain"]
    result = CliRunner().invoke(
        app, ["model", "train", "--epochs", "1", "--label-only-domain", "indomain"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2 and "only apply with --teacher" in " ".join(result.output.split())


def test_label_only_domains_enter_the_run_signature_only_when_set(tmp_path: Path) -> None:
    """A run without the option resumes its old checkpoints; a run with it never resumes one without."""
    model, indomain = DEFAULT_MODEL_DIR, DATA_DIR / "indomain"
    files = {"train_files": [indomain / "train.jsonl"], "valid_files": [indomain / "valid.jsonl"]}
    plain = run_signature(_config(tmp_path, model_in=model, teachers=[model], **files), 8)
    once = _config(tmp_path, model_in=model, teachers=[model], label_only_domains=["indomain"], **files)
    twice = _config(
        tmp_path, model_in=model, teachers=[model], label_only_domains=["indomain", "indomain"], **files
    )
    assert "label_only_domains" not in plain
    assert run_signature(once, 8) == run_signature(twice, 8) == plain | {"label_only_domains": ["indomain"]}


def test_domain_options_of_the_command_line() -> None:
    for args, expected in (
        (["model", "train", "--balance-domains"], "only apply with --epochs"),
        (["model", "train", "--epochs", "1", "--domain-weight", "smsa"], "expected DOMAIN=W"),
        (["model", "train", "--epochs", "1", "--domain-weight", "smsa=-1"], "expected DOMAIN=W"),
    ):
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 2, result.output
        assert expected in " ".join(result.output.split()), result.output


RECORDED_AS = {
    "model_in": "source_model",
    "train_files": "data",
    "valid_files": "data",
    "test_files": "metrics (one entry per set)",
    "epochs": "epochs",
    "lr": "lr",
    "batch_size": "batch_size",
    "max_length": "max_length",
    "freeze_embeddings": "freeze_word_embeddings",
    "layer_decay": "layer_decay",
    "warmup_ratio": "schedule (as warmup steps)",
    "schedule": "schedule",
    "class_weighted": "class_weighted",
    "device": "device",
    "seed": "seed",
    "max_steps": "max_steps",
    "train_limit": "train_limit",
    "storage": "encoder.storage",
    "onnx": "calibrated_on, onnx",
    "layers": "layers",
    "freeze_layers": "freeze_layers",
    "teachers": "teacher.ensemble",
    "teacher_backend": "teacher.backend",
    "distill_weight": "teacher.distill_weight",
    "anchor_weight": "teacher.anchor_weight",
    "unlabelled_files": "data.unlabelled",
    "label_only_domains": "teacher.label_only_domains",
    "domain_sampling": "domain_sampling",
    "domains": "domain_sampling",
    "calibrate_on": "temperature_domain",
}
"""Where ``pantau_model.json`` (``finetune``) records each choice of a run."""
NOT_RECORDED = {"out_dir", "checkpoint_dir", "resume", "checkpoint_every", "threads"}
"""Where and how a run went, not what it trained: the same model comes out either way."""


def test_every_choice_of_a_run_is_recorded_or_said_not_to_matter() -> None:
    """A new field of FinetuneConfig must be added to ``finetune`` in pantau_model.json (and to the run's
    signature in training/checkpoints.py when it changes the steps), then listed here."""
    assert set(FinetuneConfig.model_fields) == set(RECORDED_AS) | NOT_RECORDED


def test_temperature_weighs_each_validation_domain_the_same() -> None:
    """90 calibrated rows and 10 underconfident ones: pooled, the 90 decide; by domain, the 10 count half."""
    rng = np.random.default_rng(7)
    calibrated = rng.normal(size=(90, 3))
    y_calibrated = np.array([rng.choice(3, p=np.exp(z) / np.exp(z).sum()) for z in calibrated])
    timid = np.zeros((10, 3))
    timid[:, 0] = 0.5  # always right, logits too flat
    logits = np.vstack([calibrated, timid])
    y = np.concatenate([y_calibrated, np.zeros(10, dtype=int)])
    pooled = fit_temperature(logits, y)
    by_domain = fit_temperature(logits, y, DOMAINS)
    assert by_domain < pooled, "the underconfident domain pulls the temperature down (sharper)"
    # Equal weights are the same as repeating the small domain nine times.
    repeated = np.vstack([calibrated] + [timid] * 9)
    y_repeated = np.concatenate([y_calibrated] + [np.zeros(10, dtype=int)] * 9)
    assert by_domain == pytest.approx(fit_temperature(repeated, y_repeated), rel=1e-9)
