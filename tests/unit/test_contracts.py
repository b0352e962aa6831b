"""The contracts: what is accepted, what is rejected and why, and the ES document built from a post."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.sinks.elasticsearch import TEMPLATE_PATH
from pipeline.sources.files import count_records, read_records
from pipeline.validation import Rejected, decode_raw_post, validate_raw_post
from schemas import DeadLetter, EnrichedPost, PostDocument, RawPost, Sentiment
from schemas.vocab import Agency, Category, PiiKind, Region, SentimentLabel

VALID = {
    "id": "1859012345678901234",
    "platform": "x",
    "text": "  Samsat\u200b Cikokol   antri\tpanjang banget  ",
    "created_at": "2026-11-20T07:42:13+07:00",
}


def test_valid_post_is_normalised_and_keeps_unknown_fields() -> None:
    post = validate_raw_post({**VALID, "source_query": "samsat", "author": {"handle": "a", "verified": True}})
    assert post.text == "Samsat Cikokol antri panjang banget"
    assert post.key == "x:1859012345678901234"
    assert post.model_extra == {"source_query": "samsat"}
    assert post.author is not None and post.author.model_extra == {"verified": True}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "a/b"}, "id"),
        ({"id": "x" * 257}, "id"),
        ({"id": ""}, "id"),
        ({"platform": "friendster"}, "platform"),
        ({"created_at": "2026-11-20T07:42:13"}, "created_at"),
        ({"created_at": "kemarin"}, "created_at"),
        ({"text": ""}, "text"),
        ({"lang": "081234567890"}, "lang"),  # indexed as is: a language tag, not free text
        ({"lang": "<script>"}, "lang"),
    ],
)
def test_contract_violations_name_the_field(change: dict[str, str], field: str) -> None:
    with pytest.raises(Rejected) as info:
        validate_raw_post({**VALID, **change})
    assert info.value.stage == "validate"
    assert info.value.reason.startswith(field)


def test_posts_dated_more_than_a_day_ahead_are_rejected() -> None:
    soon = datetime.now(UTC) + timedelta(hours=20)
    assert validate_raw_post({**VALID, "created_at": soon.isoformat()}).created_at == soon
    with pytest.raises(Rejected, match=r"created_at: .* more than a day in the future"):
        validate_raw_post({**VALID, "created_at": (soon + timedelta(days=365)).isoformat()})


def test_missing_fields_are_all_reported() -> None:
    with pytest.raises(Rejected) as info:
        validate_raw_post({"text": "halo"})
    for field in ("id", "platform", "created_at"):
        assert f"{field}: Field required" in info.value.reason


def test_text_bound_applies_after_normalisation() -> None:
    padded = "a" * 9_990 + "\u200b" * 500  # zero-width characters do not count
    assert len(validate_raw_post({**VALID, "text": padded}).text) == 9_990
    with pytest.raises(Rejected, match="10001 characters after normalisation"):
        validate_raw_post({**VALID, "text": "a" * 10_001})
    with pytest.raises(Rejected, match="empty after normalisation"):
        validate_raw_post({**VALID, "text": "\u200b \u200d\t"})


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not JSON"),
        (b'{"text": "unterminated', "not JSON: Unterminated string starting at: line 1 column 10"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (None, "tombstone"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (json.dumps({**VALID, "blob": "x" * 512_000}).encode(), "bytes, limit 512,000"),
    ],
)
def test_undecodable_messages(value: bytes | None, reason: str) -> None:
    with pytest.raises(Rejected) as info:
        decode_raw_post(value)
    assert info.value.stage == "decode" and reason in info.value.reason


def test_file_reader_reports_bad_lines_with_numbers(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(json.dumps(VALID) + "\n\n{oops\n[1]\n" + json.dumps({**VALID, "id": "2"}) + "\n")
    records = list(read_records(path))
    assert [r.line for r in records] == [1, 3, 4, 5]
    assert records[1].error and "not JSON" in records[1].error
    assert records[2].error and "JSON object" in records[2].error
    assert count_records(path) == 4


def test_csv_rows_are_reported_at_their_first_line_and_a_repeated_column_refuses_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        'id,platform,text,created_at\n\n1,x,"one\ntwo\nthree",yesterday\n2,x,ok,2026-11-20T07:00:00Z\n'
    )
    rows = list(read_records(path))
    assert [r.line for r in rows] == [3, 6]
    assert rows[0].data is not None and rows[0].data["text"] == "one\ntwo\nthree"
    path.write_text("id,platform,text,text,created_at\n1,x,first,second,2026-11-20T07:00:00Z\n")
    (only,) = read_records(path)
    assert only.line == 1 and only.error == "column 'text' appears twice in the header"


def test_a_number_too_large_for_a_float_and_a_key_ending_in_a_newline_are_refused() -> None:
    from pipeline.validation import deleted_post_key

    with pytest.raises(Rejected, match="out of range"):
        decode_raw_post(json.dumps(VALID).replace("}", ', "score": 1e999}').encode())
    assert deleted_post_key(b"x:1", None) == "x:1"
    assert deleted_post_key(b"x:1\n", None) is None


def test_posts_nested_too_deep_or_not_writable_as_json_are_rejected() -> None:
    deep = {**VALID, "x": json.loads("[" * 33 + "]" * 33)}
    with pytest.raises(Rejected, match="nested deeper than 32 levels"):
        validate_raw_post(deep)
    assert validate_raw_post({**VALID, "x": json.loads("[" * 31 + "]" * 31)}).model_extra
    # a lone surrogate arrives through a JSON escape; the enriched message could not be written
    with pytest.raises(Rejected, match="cannot be written as JSON") as info:
        decode_raw_post(json.dumps({**VALID, "note": "\udc80"}).encode())  # ASCII, with the escape
    assert info.value.stage == "validate"


def test_file_reader_reports_undecodable_lines_and_reads_on(tmp_path: Path) -> None:
    jsonl = tmp_path / "posts.jsonl"
    good = json.dumps(VALID).encode()
    jsonl.write_bytes(good + b"\n" + b'{"text": "caf\xe9"}\n' + b"[" * 100_000 + b"\n" + good + b"\n")
    records = list(read_records(jsonl))
    assert [(r.line, r.error) for r in records if r.error] == [
        (2, "not UTF-8: byte 0xe9 at column 14"),
        (3, "not JSON the parser accepts: nested too deeply"),
    ]
    assert [r.line for r in records if r.data == VALID] == [1, 4]
    csv_path = tmp_path / "posts.csv"
    csv_path.write_bytes(
        b"id,platform,text,created_at\n1,x,caf\xe9,2026-11-20T07:00:00Z\n2,x,ok,2026-11-20T07:00:00Z\n"
    )
    rows = list(read_records(csv_path))
    assert rows[0].error == "not UTF-8: byte 0xe9 in column 'text'"
    assert rows[1].data is not None and rows[1].data["text"] == "ok"


def test_files_from_excel_and_odd_csv_are_read_or_reported_per_row(tmp_path: Path) -> None:
    bom = "\ufeff"
    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_text(bom + json.dumps(VALID) + "\n", encoding="utf-8")
    assert [r.data for r in read_records(jsonl)] == [VALID]
    header = "id,platform,text,created_at"
    rows = [
        "1,x,ok,2026-11-20T07:00:00Z",
        "2,x," + "a" * 200_000 + ",2026-11-20T07:00:00Z",  # over the csv module's default cell limit
        "3,x,ok,2026-11-20T07:00:00Z",
    ]
    excel = tmp_path / "excel.csv"
    excel.write_text(bom + "\n".join([header, *rows]) + "\n", encoding="utf-8")
    read = list(read_records(excel))
    assert [r.data["id"] if r.data else r.error for r in read] == ["1", "2", "3"]
    clash = tmp_path / "clash.csv"
    clash.write_text("id,platform,text,created_at,author,author.handle\n1,x,ok,2026-11-20T07:00:00Z,a,b\n")
    (record,) = read_records(clash)
    assert record.error == "column 'author.handle' clashes with column 'author'"
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text(header + '\n1,x,ok,2026-11-20T07:00:00Z\n2,x,"never closed,2026\n3,x,ok,2026\n')
    first, broken = read_records(unclosed)
    assert first.data is not None and first.data["id"] == "1"
    assert broken.line == 3 and broken.error is not None and broken.error.startswith("not valid CSV")
    # a bad row in the middle is reported on its own line and the rows after it are still read
    middle = tmp_path / "middle.csv"
    middle.write_text(header + '\n2,x,"ok" bad,2026\n' + "\n".join(rows[:1] + rows[2:]) + "\n")
    records = list(read_records(middle))
    assert [(r.line, r.data["id"] if r.data else "error") for r in records] == [
        (2, "error"),
        (3, "1"),
        (4, "3"),
    ]


def test_csv_dotted_headers_nest(tmp_path: Path) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        "id,platform,text,created_at,author.handle,metrics.likes\n"
        '1,instagram,"PDAM mati, tolong",2026-11-20T07:00:00Z,warga,5\n'
    )
    (record,) = list(read_records(path))
    assert record.data is not None
    post = validate_raw_post(record.data)
    assert post.author is not None and post.author.handle == "warga"
    assert post.metrics is not None and post.metrics.likes == 5


def _enriched() -> EnrichedPost:
    raw = RawPost.model_validate(
        {**VALID, "geo": {"place": "Cikokol", "lat": -6.2, "lon": 106.6}, "x_tag": 1}
    )
    return EnrichedPost(
        **raw.model_dump(exclude={"text", "lang"}),
        text="Samsat Cikokol antri panjang",
        agencies=[Agency.SAMSAT],
        region=Region.KOTA_TANGERANG,
        sentiment=Sentiment(
            label=SentimentLabel.NEGATIVE,
            score=0.8,
            scores={
                SentimentLabel.NEGATIVE: 0.8,
                SentimentLabel.NEUTRAL: 0.15,
                SentimentLabel.POSITIVE: 0.05,
            },
        ),
        category=Category.PAJAK_KENDARAAN,
        category_confidence=0.9,
        is_public_service=True,
        pii=[PiiKind.PHONE],
        lang="id",
        model_version="test",
        processed_at=datetime(2026, 11, 20, tzinfo=UTC),
    )


def test_document_is_flat_and_strict() -> None:
    source = PostDocument.from_post(_enriched()).to_source()
    assert source["@timestamp"] == "2026-11-20T07:42:13+07:00"
    assert source["region_name"] == "Kota Tangerang"
    assert source["sentiment"] == {
        "label": "negative",
        "score": 0.8,
        "negative": 0.8,
        "neutral": 0.15,
        "positive": 0.05,
    }
    assert source["geo"] == {"place": "Cikokol", "location": {"lat": -6.2, "lon": 106.6}}
    assert source["extra"] == {"x_tag": 1}
    mapping = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))["template"]["mappings"]
    assert set(source) <= set(mapping["properties"])


def test_enriched_round_trips_through_json() -> None:
    post = _enriched()
    again = EnrichedPost.model_validate_json(post.model_dump_json(exclude_none=True))
    assert again == post


@pytest.mark.parametrize(
    ("change", "field"),
    [({"stage": "somewhere"}, "stage"), ({"stage": None}, "stage"), ({"reason": None}, "reason")],
)
def test_dead_letter_requires_reason_and_stage(change: dict[str, object], field: str) -> None:
    letter = {"original": "", "stage": "decode", "reason": "x", "failed_at": datetime.now(UTC)}
    DeadLetter.model_validate(letter)  # the complete letter is valid
    letter |= change
    letter = {k: v for k, v in letter.items() if v is not None}
    with pytest.raises(ValueError, match=field):
        DeadLetter.model_validate(letter)


def test_extra_fields_named_like_enrichment_fields_are_renamed_not_fatal() -> None:
    from pipeline.enrich.enricher import mask_other_fields

    post = validate_raw_post(
        {**VALID, "category": "Berita Daerah", "region": "Banten", "topic": "banjir", "raw_category": "x"}
    )
    fields, _ = mask_other_fields(post)
    assert {k: fields[k] for k in fields if k.startswith("raw_") or k == "topic"} == {
        "raw_category": "x",
        "raw_raw_category": "Berita Daerah",
        "raw_region": "Banten",
        "raw_topic": "banjir",
    }
    enriched = EnrichedPost(
        **fields,
        text=post.text,
        sentiment=Sentiment(
            label="neutral", score=0.9, scores={"negative": 0.05, "neutral": 0.9, "positive": 0.05}
        ),
        category="bansos",
        category_confidence=0.8,
        is_public_service=True,
        model_version="test",
        processed_at=datetime.now(UTC),
    )
    assert enriched.category == "bansos" and enriched.topic is None and enriched.region is None
    assert enriched.model_extra is not None and enriched.model_extra["raw_raw_category"] == "Berita Daerah"


@pytest.mark.parametrize("lang", ["id", "in", "und", "jv", "en-US", "zh_Hant", "qme"])
def test_platform_language_tags_are_accepted(lang: str) -> None:
    """What X (in, und, qme), Mastodon (ISO 639) and producers send."""
    assert validate_raw_post({**VALID, "lang": lang}).lang == lang
