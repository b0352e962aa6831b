from __future__ import annotations

import pytest

from pipeline.text.normalize import normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Samsat   Serang\tantre   lama  ", "Samsat Serang antre lama"),
        ("ＫＴＰ　ｂｅｌｕｍ　ｊａｄｉ", "KTP belum jadi"),  # full-width letters and ideographic space
        ("sam\u200bsat\u200c ba\u2060nten\ufeff", "samsat banten"),
        ("jalan\u00a0rusak", "jalan rusak"),  # NBSP
        ("air\u00admati", "airmati"),  # soft hyphen is a format char
        ("baris1\r\nbaris2\rbaris3\u2028baris4", "baris1\nbaris2\nbaris3\nbaris4"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("a\n\nb", "a\n\nb"),
        ("  satu  \n   dua   ", "satu\ndua"),
        ("bel\x00um\x07 jadi", "belum jadi"),
        ("\u202ekiri\u202c", "kiri"),  # bidi overrides
        ("hubungi Budi\u200b081234567890", "hubungi Budi 081234567890"),  # a letter meets a digit: a space
        ("wa \u0660\u0668\u0661\u0662 \u06f3\u06f4 \u0968\u0969", "wa 0812 34 23"),  # digits of other scripts
        ("0\ufe0f\u20e38\ufe0f\u20e3", "08"),  # keycap digits
        ("1\u200b\ufe0f\u20e3 5\u20e3\u20e3", "1 5"),  # the same after one pass and after two
        ("0812\u034f3456\u034f7890 sam\u034fsat", "081234567890 samsat"),  # grapheme joiner: blank
        ("Budi\u3164\u115f0812 a\uffa0b", "Budi 0812 ab"),  # Hangul fillers draw nothing either
        ("baris\u2800\u2800satu", "baris satu"),  # the Braille blank is a space
        ("", ""),
        ("   \n\t  ", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_tabs_inside_lines_become_spaces() -> None:
    assert normalize_text("kolom1\t\tkolom2") == "kolom1 kolom2"


def test_keeps_emoji_and_their_joiners() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    rainbow = "\U0001f3f3\ufe0f\u200d\U0001f308"
    thumbs = "\U0001f44d\U0001f3fd"
    text = f"Pelayanan oke {family} {rainbow} {thumbs} 😡🔥"
    assert normalize_text(text) == text


def test_stray_joiner_between_letters_is_removed() -> None:
    assert normalize_text("dukc\u200dapil 👍\u200d") == "dukcapil 👍"


def test_subdivision_flag_keeps_tags() -> None:
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert normalize_text(f"go {scotland}") == f"go {scotland}"
    assert normalize_text("a\U000e0067b") == "ab"  # a tag char outside a flag is junk


def test_idempotent() -> None:
    raw = " Jalan\u200b  rusak\r\n\r\n\r\n\r\ndi  Cikupa 😭\u200d "
    once = normalize_text(raw)
    assert normalize_text(once) == once
