"""The brief's HTML: self-contained, escaped, Indonesian by default, times in WIB."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from pipeline.brief.render import render
from tests.unit.brief_sample import END, HOSTILE, sample_data


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


def test_markup_from_posts_is_text() -> None:
    page = render(sample_data())
    tags = _tags(page)
    assert not [t for t, _ in tags if t in ("script", "img", "iframe", "object", "embed", "link")]
    assert not [a for _, attrs in tags for a in attrs if a.startswith("on")]
    assert "&lt;script&gt;" in page and "onerror=&quot;" in page
    assert HOSTILE not in page


def test_only_http_links_are_kept() -> None:
    page = render(sample_data())
    hrefs = [attrs["href"] for tag, attrs in _tags(page) if tag == "a"]
    assert hrefs == ["https://x.com/warga/status/1"]


def test_nothing_is_fetched_and_nothing_runs() -> None:
    page = render(sample_data())
    assert "default-src 'none'" in page
    for tag, attrs in _tags(page):
        assert not attrs.get("src"), tag
    assert not re.search(r"url\(|@import|https?://(?!x\.com/warga)", page)


def test_indonesian_by_default_english_on_request_and_wib_times() -> None:
    page = render(sample_data())
    assert '<html lang="id">' in page and "Ringkasan mingguan" in page and "Angka utama" in page
    assert "22-11-2026 00:00 WIB – 29-11-2026 00:00 WIB" in page  # END is 17:00 UTC
    english = render(sample_data(), lang="en")
    assert '<html lang="en">' in english and "Headline numbers" in english
    assert END.isoformat() not in page


def test_every_section_has_its_chart_or_table() -> None:
    page = render(sample_data())
    for section in ("volume", "sentiment", "catregion", "map", "topics", "alerts", "responses", "engaged"):
        assert f'<section id="{section}">' in page
    assert page.count("<svg") == 3  # volume, sentiment, tile map
    for name in ("Cilegon", "Kota Serang", "Kab. Tangerang", "Kota Tangerang", "Pandeglang", "Kab. Serang"):
        assert name in page
    assert "Lebak" in page and "Tangsel" in page
    assert "▲ 20 %" in page  # 120 posts against 100


def test_missing_alerts_and_responses_indices_say_so() -> None:
    page = render(sample_data(alerts=False, responses=False))
    assert "indeks pantau-alerts belum ada" in page and "indeks pantau-responses belum ada" in page


def test_report_refuses_unknown_agency_region_and_language_before_connecting() -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    for args, word in (
        (["--agency", "nasa"], "samsat"),
        (["--region", "Jakarta"], "3602 (Kab. Lebak)"),
        (["--lang", "fr"], "id or en"),
    ):
        result = CliRunner().invoke(app, ["report", *args], env={"COLUMNS": "200"})
        assert result.exit_code == 2 and word in result.output, result.output


def test_responsiveness_rows_show_the_reports_numbers() -> None:
    page = render(sample_data())
    assert "10 keluhan" in page and "6 ditanggapi (60%)" in page
    assert "median tanggapan pertama 1 j 30 m" in page and "3 lewat batas waktu" in page
    english = render(sample_data(), "en")
    assert "median first response 1 h 30 m" in english and "3 overdue" in english


def test_the_missing_index_notes_name_the_configured_indices() -> None:
    data = sample_data(alerts=False, responses=False)
    data.indices.alerts, data.indices.responses = "test-alerts", "test-responses"
    page = render(data)
    assert "indeks test-alerts belum ada" in page and "indeks test-responses belum ada" in page
