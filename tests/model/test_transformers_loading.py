"""The shipped model directory loads with plain ``transformers`` (no pipeline code, no hub)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.model import encoder
from pipeline.model.data import DEFAULT_MODEL_DIR
from pipeline.model.sentiment import SentimentModel

TEXTS = [
    "pelayanan samsat serang cepat dan ramah, mantap pak 👍",
    "air pdam mati tiga hari tanpa pemberitahuan, payah",
    "besok ada pemadaman listrik terjadwal di kecamatan cipocok jaya",
    "Sirine peringatan dini di Mauk rusak sejak tahun lalu",
    # over 128 tokens: both routes must cut it where the model was trained to read
    "antre di samsat dari pagi, " * 30 + "akhirnya pulang tanpa stnk, kecewa",
]


def transformers_probabilities(model_dir: Path, texts: list[str]) -> np.ndarray:
    """What a user without this package gets: Auto classes, the tokenizer, the ``query: `` prefix."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    batch = tokenizer(["query: " + t for t in texts], return_tensors="pt", padding=True, truncation=True)
    assert [model.config.id2label[i] for i in range(3)] == ["negative", "neutral", "positive"]
    with torch.inference_mode():
        return np.asarray(model(**batch).logits.softmax(-1).numpy())


def test_sequence_classifier_gives_the_pipelines_fp32_probabilities() -> None:
    expected = SentimentModel.load(DEFAULT_MODEL_DIR, backend="fp32").predict_proba(TEXTS)
    got = transformers_probabilities(DEFAULT_MODEL_DIR, TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert list(got.argmax(1)[:2]) == [2, 0]  # the clear positive and the clear negative


def test_auto_model_is_the_encoder_the_pipeline_runs() -> None:
    import torch
    from transformers import AutoModel

    from pipeline.model.modeling_pantau import mean_pool

    model = AutoModel.from_pretrained(str(DEFAULT_MODEL_DIR), trust_remote_code=True)
    reference = encoder.load_encoder(DEFAULT_MODEL_DIR)
    assert not model.training and len(model.encoder.layer) == len(reference.encoder.layer) == 8
    ids = torch.tensor([[0, 39, 840, 12, 31385, 837, 2]])
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        a = mean_pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
        b = mean_pool(reference(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
    torch.testing.assert_close(a, b)


PLAIN_INSTALL = {"__future__", "pathlib", "typing", "numpy", "torch", "safetensors", "transformers"}
"""What a plain transformers install has: the directory must load without this package."""


def test_shipped_loader_code_is_the_packages() -> None:
    """A change to the loader must reach the shipped directory, or users would run stale code."""
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text(encoding="utf-8"))
    assert config["auto_map"] == encoder.AUTO_MAP
    tokenizer_config = json.loads((DEFAULT_MODEL_DIR / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tokenizer_config["model_max_length"] == encoder.DEFAULT_MAX_LENGTH
    for name in encoder.TRANSFORMERS_CODE:
        source = Path(encoder.__file__).with_name(name)
        assert (DEFAULT_MODEL_DIR / name).read_bytes() == source.read_bytes(), name
        imported = set()
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        assert imported <= PLAIN_INSTALL, imported - PLAIN_INSTALL


def test_written_directories_cap_the_tokenizer_where_the_pipeline_does(tmp_path: Path) -> None:
    """A directory trained from an older source (whose tokenizer said 512) must still cut at 128."""
    (tmp_path / "config.json").write_text('{"num_hidden_layers": 7}', encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 512}', encoding="utf-8")
    encoder.write_transformers_code(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8")) == {
        "model_max_length": encoder.DEFAULT_MAX_LENGTH
    }
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config == {"num_hidden_layers": 7, "auto_map": encoder.AUTO_MAP}


def test_base_encoder_without_head_says_to_use_auto_model(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    base = tmp_path / "base"
    shutil.copytree(DEFAULT_MODEL_DIR, base, ignore=shutil.ignore_patterns("head.safetensors"))
    with pytest.raises(FileNotFoundError, match="AutoModel"):
        AutoModelForSequenceClassification.from_pretrained(str(base), trust_remote_code=True)


def test_classifier_behaves_like_any_transformers_model(tmp_path: Path) -> None:
    """Options transformers users pass are honoured, not dropped: dtype, labels, hidden states, tuples,
    and a save_pretrained copy loads again."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(DEFAULT_MODEL_DIR), trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(str(DEFAULT_MODEL_DIR))
    batch = tokenizer(["query: " + t for t in TEXTS[:2]], return_tensors="pt", padding=True, truncation=True)
    labels = torch.tensor([2, 0])
    with torch.inference_mode():
        out = model(**batch, labels=labels, output_hidden_states=True)
        as_tuple = model(**batch, return_dict=False)
    assert out.loss is not None
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], out.logits)

    half = AutoModelForSequenceClassification.from_pretrained(
        str(DEFAULT_MODEL_DIR), trust_remote_code=True, dtype=torch.float16
    )
    assert half.dtype == torch.float16

    copy = tmp_path / "copy"
    model.save_pretrained(str(copy))
    tokenizer.save_pretrained(str(copy))
    again = AutoModelForSequenceClassification.from_pretrained(str(copy), trust_remote_code=True)
    assert again.config.id2label == model.config.id2label
    with torch.inference_mode():
        torch.testing.assert_close(again(**batch).logits, out.logits)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    from transformers import AutoModel

    broken = tmp_path / "broken"
    shutil.copytree(DEFAULT_MODEL_DIR, broken)
    config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    config["num_hidden_layers"] += 1  # more than the file holds: transformers would fill one at random
    (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match="do not fit the config"):
        AutoModel.from_pretrained(str(broken), trust_remote_code=True)
