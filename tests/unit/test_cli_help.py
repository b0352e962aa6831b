"""`pantau --help` lists every command with a description."""

from __future__ import annotations

import json

import typer.main
from typer.testing import CliRunner

from pipeline.cli import app


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    registered = set(typer.main.get_group(app).commands)
    expected = {
        "demo",
        "up",
        "status",
        "down",
        "worker",
        "produce",
        "classify",
        "schema",
        "model",
        "bench",
        "deadletter",
        "alerts",
        "subscribers",
        "post",
        "kibana",
    }
    assert registered >= expected | {"topics", "responsiveness"}
    for command in registered:
        assert f" {command} " in result.output
    assert "│ demo " in result.output


def test_schema_export_writes_every_contract(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["schema", "export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "Alert.schema.json",
        "DeadLetter.schema.json",
        "EmergingTopic.schema.json",
        "EnrichedPost.schema.json",
        "PostDocument.schema.json",
        "RawPost.schema.json",
        "ResponseDocument.schema.json",
        "ResponseMark.schema.json",
        "SubscribersFile.schema.json",
        "ThreadPost.schema.json",
        "ThreadPrune.schema.json",
        "TopicAssignment.schema.json",
        "TopicInput.schema.json",
        "TopicPost.schema.json",
    ]
    raw = (tmp_path / "RawPost.schema.json").read_text()
    assert '"required"' in raw and '"created_at"' in raw
    # The published topic leaves out what discovery keeps to itself.
    topic = json.loads((tmp_path / "EmergingTopic.schema.json").read_text())
    assert "growth" in topic["properties"] and "centroid" not in topic["properties"]


def test_frozen_head_trainer_refuses_the_onnx_backend_up_front() -> None:
    result = CliRunner().invoke(app, ["model", "train", "--backend", "onnx-int8"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "frozen-head trainer embeds with torch" in result.output


def test_model_train_help_lists_the_distillation_options() -> None:
    result = CliRunner().invoke(app, ["model", "train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--layers", "--freeze-layers", "--teacher", "--epochs", "--seed"):
        assert option in result.output


def test_classify_refuses_to_overwrite_its_input_and_output_without_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    posts = tmp_path / "posts.jsonl"
    posts.write_text('{"id": "1", "platform": "x", "text": "ok", "created_at": "2026-11-20T07:00:00Z"}\n')
    same = CliRunner().invoke(app, ["classify", "-i", str(posts), "-o", str(posts)], env={"COLUMNS": "200"})
    assert same.exit_code == 2 and "would overwrite" in same.output
    assert posts.read_text().count("\n") == 1
    out = str(tmp_path / "x.jsonl")
    stray = CliRunner().invoke(app, ["classify", "teks", "-o", out], env={"COLUMNS": "200"})
    assert stray.exit_code == 2 and "--output goes with --input" in stray.output


def test_model_eval_and_train_report_a_bad_data_file_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.tsv"
    empty.write_text("", encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "positive"}\n{"text": \n', encoding="utf-8")
    for args, message in (
        (["model", "eval", "--data", str(empty)], "empty.tsv: no labelled rows"),
        (["model", "eval", "--data", str(tmp_path / "missing.tsv")], "No such file"),
        (["model", "eval", "--task", "category", "--data", str(empty)], "category task reads JSONL"),
        (["model", "train", "--data", str(bad)], "bad.jsonl:2: not JSON"),
        (["model", "train", "--task", "category", "--data", str(bad)], "bad.jsonl:1: category 'positive'"),
    ):
        result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and message in result.output, result.output
        assert isinstance(result.exception, SystemExit), "no traceback"


def test_thread_counts_and_batch_sizes_are_checked_up_front() -> None:
    for args in (
        ["model", "train", "--threads", "0"],
        ["model", "eval", "--data", "x.tsv", "--threads", "0"],
        ["bench", "model", "--threads", "0"],
    ):
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 2 and "--threads" in result.output, (args, result.output)
    for value in ("8,x", "8,0", ""):
        result = CliRunner().invoke(app, ["bench", "model", "--batch-sizes", value], env={"COLUMNS": "200"})
        assert result.exit_code == 2, result.output
        assert "--batch-sizes" in result.output and "whole numbers ≥ 1" in result.output


def test_category_training_takes_threads_and_backend(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pipeline.model.train_category

    calls = []
    monkeypatch.setattr(
        pipeline.model.train_category, "train_category", lambda *args, **kw: calls.append((args, kw))
    )
    args = ["model", "train", "--task", "category", "--threads", "1", "--backend", "int8"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, [*args, "--head-layer", "last"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (positional, keywords), (_, last) = calls
    assert positional[4] == "int8" and keywords == {
        "threads": 1,
        "layer": "topic",
    }  # the topic layer by default
    assert last == {"threads": 1, "layer": "last"}


def test_train_options_that_do_not_apply_are_refused() -> None:
    from pipeline.model.data import DEFAULT_MODEL_DIR
    from pipeline.model.encoder import TOPIC_LAYER

    depth = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
    finetune = ["model", "train", "--epochs", "1", "--base", str(DEFAULT_MODEL_DIR)]
    for args, shown in (
        (["model", "train", "--lr", "1e-4", "--seed", "14"], ("--lr, --seed: only apply with --epochs",)),
        (["model", "train", "--calibrate-on", "indomain"], ("--calibrate-on", "with --epochs")),
        (
            ["model", "train", "--teacher", "x", "--layers", "7"],
            ("--layers, --teacher: only apply with --epochs",),
        ),
        (
            ["model", "train", "--task", "category", "--freeze-layers", "1"],
            ("--freeze-layers: only apply with",),
        ),
        (["model", "train", "--task", "category", "--base", "x"], ("--base", "does not apply")),
        (
            ["model", "train", "--task", "attribution", "--head-layer", "last"],
            ("--head-layer", "only with --task category"),
        ),
        (
            ["model", "train", "--task", "category", "--head-layer", "layer7"],
            ("--head-layer", "must be one of last, topic"),
        ),
        ([*finetune, "--backend", "int8"], ("--backend", "not with --epochs")),
        ([*finetune, "--layers", str(TOPIC_LAYER)], ("--layers", "above the topic layer", f"({depth})")),
        ([*finetune, "--layers", str(depth + 1)], ("--layers", "at most the depth of --base")),
        ([*finetune, "--freeze-layers", str(depth)], ("--freeze-layers", f"at most {depth - 1}")),
        ([*finetune, "--layers", "7", "--freeze-layers", "7"], ("--freeze-layers", "at most 6")),
    ):
        result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
        assert result.exit_code == 2, (args, result.output)
        output = " ".join(result.output.replace("│", " ").split())
        assert all(s in output for s in shown), (args, output)


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def test_help_says_what_the_commands_read_and_measure() -> None:
    from pipeline.settings import DEFAULT_MODEL_DIR, REPO_ROOT

    eval_help = _help("model", "eval")
    for fmt in (
        "TSV text<TAB>label",
        "CSV with text or tweet plus label or sentiment",
        "JSONL with text plus",
    ):
        assert fmt in eval_help
    # The epoch times the help quotes are the ones the README and the model card measured.
    train_help = _help("model", "train")
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    card = " ".join((DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text(encoding="utf-8").split())
    assert "about 31 min per SmSA epoch" in train_help and "13 min per 20,000 texts" in train_help
    assert "about 31 minutes per SmSA epoch" in readme and "13 minutes per 20,000 texts" in readme
    assert "about 31 min per epoch" in card and "2 × 622 steps, 27 minutes" in card
    assert "encoder + sentiment head" in _help("bench", "model")
