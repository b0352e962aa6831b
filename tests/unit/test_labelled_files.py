"""Labelled-file readers of `pantau model train/eval`: the columns of each format, errors naming the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.model.data import load_category_labelled, load_labelled, read_texts


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def test_csv_takes_a_sentiment_column_like_jsonl(tmp_path: Path) -> None:
    csv = _write(tmp_path / "a.csv", "id,tweet,sentiment\n1,bagus,positive\n2,jelek,Negative\n")
    assert load_labelled(csv) == (["bagus", "jelek"], ["positive", "negative"])


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty.tsv", "", "empty, or a wrong delimiter or columns"),
        ("blank.jsonl", "\n\n", "empty, or a wrong delimiter or columns"),
        ("unlabelled.csv", "text\nbagus\njelek\n", "2 row(s) without a label skipped"),
        ("unlabelled.jsonl", '{"text": "bagus"}\n', "1 row(s) without a label skipped"),
    ],
)
def test_a_file_without_labelled_rows_is_an_error(tmp_path: Path, name: str, content: str, why: str) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(ValueError, match=re.escape(f"{name}: no labelled rows ({why})")):
        load_labelled(path)


def test_a_byte_order_mark_is_not_part_of_the_first_header_or_text(tmp_path: Path) -> None:
    bom = "\ufeff"
    assert load_labelled(_write(tmp_path / "a.csv", f"{bom}text,label\nbagus,positive\n"))[0] == ["bagus"]
    assert load_labelled(_write(tmp_path / "a.tsv", f"{bom}bagus\tpositive\n"))[0] == ["bagus"]
    jsonl = _write(tmp_path / "a.jsonl", f'{bom}{{"text": "bagus", "category": "air_bersih"}}\n')
    assert read_texts(jsonl) == ["bagus"]
    assert load_category_labelled(jsonl)[1] == ["air_bersih"]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("a.jsonl", '{"text": "ok", "label": "positive"}\n{"text": "ok",\n', r"a\.jsonl:2: not JSON"),
        ("b.jsonl", '{"text": "ok", "label": "positive"}\n{"label": "positive"}\n', r"b\.jsonl:2: .*'text'"),
        ("c.tsv", b"ok\tpositive\nok\tneutral\nrusak \xff\tnegative\n", r"c\.tsv:3: not UTF-8"),
        ("d.tsv", "text\tlabel\nok\tpositive\n", r"d\.tsv:1: unknown sentiment label 'label'"),
        ("e.csv", "text,label\nok,positive\n,negative\n", r"e\.csv:3: empty text"),
        (
            "f.csv",
            'text,label\nok,positive\n"two\nlines",good\n',
            r"f\.csv:4: unknown sentiment label 'good'",
        ),
        ("g.csv", "text;label\nok;positive\n", r"g\.csv:1: CSV needs a 'text' or 'tweet' column"),
        ("h.tsv", "ok,positive\n", r"h\.tsv:1: expected text<TAB>label"),
        ("i.jsonl", '{"text": " ", "label": "positive"}\n', r"i\.jsonl:1: empty text"),
        ("j.csv", 'text,label\nok,positive\n"never closed,negative\n', r"j\.csv:3: not valid CSV"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path: Path, name: str, content: str | bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load_labelled(_write(tmp_path / name, content))


def test_category_reader_needs_jsonl_and_a_labelled_row(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"a\.tsv: the category task reads JSONL"):
        load_category_labelled(_write(tmp_path / "a.tsv", "ok\tair_bersih\n"))
    with pytest.raises(ValueError, match=r"b\.jsonl: no labelled rows"):
        load_category_labelled(_write(tmp_path / "b.jsonl", ""))
    with pytest.raises(ValueError, match=r"c\.jsonl:2: not JSON"):
        load_category_labelled(_write(tmp_path / "c.jsonl", '{"text": "ok", "category": "air_bersih"}\n{\n'))
    with pytest.raises(ValueError, match=r"d\.jsonl:1: .*'text'"):
        load_category_labelled(_write(tmp_path / "d.jsonl", '{"category": "air_bersih"}\n'))
    with pytest.raises(ValueError, match=r"e\.jsonl:1: category 'jalan' is not one of"):
        load_category_labelled(_write(tmp_path / "e.jsonl", '{"text": "ok", "category": "jalan"}\n'))
