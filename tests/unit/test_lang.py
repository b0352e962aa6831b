from __future__ import annotations

import pytest

from pipeline.text.lang import LANGS, detect_lang, language_of


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        # Indonesian, formal and informal
        ("Pelayanan di Samsat Serang sangat lambat, mohon diperbaiki", "id"),
        ("udah 3 bulan ktp gue belum jadi, gimana sih dukcapil", "id"),
        ("Jalan rusak parah", "id"),  # no markers, but long enough
        ("Pelayanan di samsat lama banget euy", "id"),  # one Sundanese particle does not flip it
        ("Kenapa air PDAM mati terus? Tolong dong min", "id"),
        # Sundanese
        ("Samsat Serang mah antri pisan euy", "su"),
        ("Kumaha ieu jalan teh rusak kitu", "su"),
        ("Hatur nuhun pisan ka petugas puskesmas", "su"),
        ("abdi teu acan kenging bansos", "su"),
        # Javanese, incl. Jawa Serang
        ("Kite wis ning samsat, ore ana antrian", "jv"),
        ("sire arep meng endi? jalan e rusak kuh", "jv"),
        ("aku wis mboten kuat ngantri", "jv"),
        ("opo ora iso didandani dalane", "jv"),
        # English
        ("Please fix the road in Serang, it is very bad", "en"),
        ("Thanks for the quick response, really appreciate it", "en"),
        # undetermined
        ("😡😡😡", "und"),
        ("banjir!", "und"),
        ("", "und"),
        ("123 456", "und"),
        ("samsat tutup", "und"),
    ],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_elongated_words_still_count() -> None:
    assert detect_lang("hatur nuhuuuun pisaaan euyyy") == "su"


def test_result_is_always_a_known_tag() -> None:
    for text in ["", "x", "a b c d", "the the the", "euy euy", "🙏 makasih min 🙏"]:
        assert detect_lang(text) in LANGS


@pytest.mark.parametrize(
    ("hint", "text", "lang"),
    [
        ("in", "jalan rusak parah di Cikupa", "id"),  # X's code for Indonesian
        ("en-US", "the road is broken again", "en"),
        ("und", "cai di imah tos tilu poe teu ngocor, punten pisan euy", "su"),  # no hint: detected
        ("qme", "jalan rusak parah di Cikupa", "id"),  # X: media only
        ("in", "cai di imah tos tilu poe teu ngocor, punten pisan euy", "su"),  # platforms miss Sundanese
        ("ar", "jalan rusak parah di Cikupa", "ar"),  # a language the markers do not know: the platform's
        (None, "jalan rusak parah di Cikupa", "id"),
    ],
)
def test_a_platform_tag_becomes_one_code_per_language(hint: str | None, text: str, lang: str) -> None:
    assert language_of(hint, text) == lang
