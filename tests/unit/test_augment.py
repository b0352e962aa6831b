"""Label-keeping variants: each follows the labelling guideline's rules 1-3 and keeps the post's label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.model.data import DATA_DIR
from pipeline.model.training.augment import (
    COURTESIES,
    FOLLOW_UPS,
    PLAIN_REQUESTS,
    THANKS,
    variants,
    write_variants,
)

TRAINING_FILE = DATA_DIR / "augmented" / "train.jsonl"

POSTS = [
    ("a#1", "air PDAM di Cilegon mati 2 hari", "negative"),
    ("a#2", "kenapa gabisa bayar pake ovo min? saldo udah kepotong", "negative"),
    ("a#3", "makasih damkar tangsel gercep bgt 🙏", "positive"),
    ("a#4", "Perekaman KTP-el dibuka hari Sabtu.", "neutral"),
]


def test_every_post_gets_one_variant_that_starts_with_it_and_keeps_its_label() -> None:
    found = variants(POSTS * 20, seed=3)
    assert len(found) == 80
    for (source, text, label), variant in zip(POSTS * 20, found, strict=True):
        assert variant.source_id == source and variant.label == label
        assert variant.text.startswith(text) and len(variant.text) > len(text)


def test_a_complaint_gets_a_question_or_a_courtesy_praise_a_request_and_sometimes_thanks() -> None:
    found = variants(POSTS * 20, seed=3)
    tails = {label: [v.text for v in found if v.label == label] for _, _, label in POSTS}
    statement, question = tails["negative"][0::2], tails["negative"][1::2]
    assert all(any(f in t for f in FOLLOW_UPS) for t in statement)
    assert {any(c in t for c in COURTESIES) for t in statement} == {True, False}  # some with thanks too
    assert all(any(t.endswith(c) for c in COURTESIES) for t in question)  # it already asks
    assert all(any(t.endswith(r) for r in PLAIN_REQUESTS) for t in tails["neutral"])
    # praise keeps its label with thanks after the request too (rule 2), so thanks never mean a complaint
    thanked = [
        t for t in tails["positive"] if any(t.endswith(f"{r} {c}") for r in PLAIN_REQUESTS for c in THANKS)
    ]
    plain = [t for t in tails["positive"] if any(t.endswith(r) for r in PLAIN_REQUESTS)]
    assert thanked and plain and len(thanked) + len(plain) == len(tails["positive"])
    rules = {v.rule for v in found if v.label == "positive"}
    assert rules == {"2: request", "2: request and thanks"}
    # a post ending in a word gets a full stop before the added sentence; one ending in punctuation does not
    assert statement[0].startswith("air PDAM di Cilegon mati 2 hari. ")
    assert tails["neutral"][0].startswith("Perekaman KTP-el dibuka hari Sabtu. ")


def test_the_same_seed_writes_the_same_file_and_another_seed_another(tmp_path: Path) -> None:
    first, again, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_variants(variants(POSTS * 5, seed=0), first)
    write_variants(variants(POSTS * 5, seed=0), again)
    write_variants(variants(POSTS * 5, seed=1), other)
    assert first.read_bytes() == again.read_bytes() != other.read_bytes()
    record = json.loads(first.read_text(encoding="utf-8").splitlines()[0])
    assert set(record) == {"text", "sentiment", "source_id", "rule"} and record["rule"].startswith("1:")


def test_an_unknown_label_is_an_error_and_an_empty_text_gets_no_variant() -> None:
    (only,) = variants([("a#1", "   ", "negative"), ("a#2", "mantap!", "positive")])
    assert (only.source_id, only.label, only.rule) == ("a#2", "positive", "2: request")
    assert only.text.startswith("mantap! ") and only.text[8:] in PLAIN_REQUESTS  # no full stop after "!"
    with pytest.raises(ValueError, match="a#3: unknown sentiment label 'Negative'"):
        variants([("a#3", "air mati", "Negative")])


def test_the_command_will_not_overwrite_the_training_file_with_other_posts(tmp_path: Path) -> None:
    valid = tmp_path / "valid.jsonl"
    valid.write_text(
        json.dumps({"text": "air mati 2 hari", "sentiment": "negative"}) + "\n", encoding="utf-8"
    )
    before = TRAINING_FILE.read_bytes()
    refused = CliRunner().invoke(app, ["model", "augment", "--data", str(valid)])
    assert refused.exit_code == 2 and "give --out with --data" in refused.output
    assert TRAINING_FILE.read_bytes() == before
    out = tmp_path / "[x]" / "valid.jsonl"
    done = CliRunner().invoke(app, ["model", "augment", "--data", str(valid), "--out", str(out)])
    assert done.exit_code == 0 and f"to {out}" in done.output.replace("\n", "")
    (written,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert written["source_id"] == "valid.jsonl#1" and written["text"].startswith("air mati 2 hari. ")
    assert list(out.parent.iterdir()) == [out]  # no temporary file left beside it
