"""Canonical text form for every post, so that matching, masking and models all see the same string.

Emoji sequences joined with ZERO WIDTH JOINER (👨‍👩‍👧, 🏳️‍🌈) keep their joiner: it is dropped only when
it does not sit between two emoji, where it is invisible noise that splits words for the matchers.
Emoji tag sequences (subdivision flags such as 🏴󠁧󠁢󠁳󠁣󠁴󠁿) keep their tag characters for the same reason.
"""

from __future__ import annotations

import re
import unicodedata

_ZWJ = "\u200d"
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
# Printable but blank: the combining grapheme joiner, Hangul fillers, Khmer inherent vowels and Mongolian
# variation selectors draw nothing, and "0812\u034f3456\u034f7890" would read as three short numbers.
_BLANK_MARKS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0")
_INVISIBLE = _ZERO_WIDTH | _BLANK_MARKS
_HAS_BLANK_MARK = re.compile(f"[{''.join(sorted(_BLANK_MARKS))}]")
_BRAILLE_BLANK = "\u2800"
"""Drawn as a space (captions use it to lay out lines), so it is one."""
_KEEP_CONTROLS = frozenset("\n\t")
_TAG_FIRST, _TAG_LAST = 0xE0020, 0xE007F
_BLACK_FLAG = "\U0001f3f4"

_NEWLINES = re.compile(r"\r\n|[\r\u2028\u2029\x85\x0b\x0c]")
_HSPACE = re.compile(r"[^\S\n]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _is_emoji_part(ch: str) -> bool:
    """Pictographs, skin-tone modifiers and the emoji variation selector."""
    return unicodedata.category(ch) == "So" or ch == "\ufe0f" or 0x1F3FB <= ord(ch) <= 0x1F3FF


def _letter_meets_digit(before: str, after: str) -> bool:
    return (before.isalpha() and after.isdigit()) or (before.isdigit() and after.isalpha())


def _drop_invisible(text: str) -> str:
    """Invisible characters out: dropped inside a word or a number ("sam\u200bsat"), a space between a letter
    and a digit ("Budi\u200b0812...": glued, the number would pass for a code and escape masking)."""
    out: list[str] = []
    last = len(text) - 1
    visible = 0  # index of the next character that is not zero-width, found once per run (linear time)
    for i, ch in enumerate(text):
        if ch == _ZWJ and out and i < last and _is_emoji_part(out[-1]) and _is_emoji_part(text[i + 1]):
            out.append(ch)
            continue
        if _TAG_FIRST <= ord(ch) <= _TAG_LAST:
            if out and (out[-1] == _BLACK_FLAG or _TAG_FIRST <= ord(out[-1]) <= _TAG_LAST):
                out.append(ch)
            continue
        kind = "Cf" if ch in _INVISIBLE else unicodedata.category(ch)
        if ch not in _KEEP_CONTROLS and kind in ("Cc", "Cf"):
            if visible <= i:
                visible = i + 1
                while visible <= last and text[visible] in _INVISIBLE:
                    visible += 1
            following = text[visible] if visible <= last else ""
            if out and _letter_meets_digit(out[-1], following):
                out.append(" ")
            continue
        out.append(ch)
    return "".join(out)


_KEYCAP = re.compile("(\\d)(?:\ufe0f?\u20e3)+")
"""A keycap digit (0️⃣) is that digit."""


def _ascii_digits(text: str) -> str:
    """Every decimal digit as ASCII: NFKC leaves Arabic-Indic, Devanagari and other scripts' digits as they
    are, and a phone number or NIK written in them would escape the masks, which read 0-9."""
    if text.isascii():
        return text
    text = _KEYCAP.sub(r"\1", text)
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)


def _needs_char_scan(text: str) -> bool:
    """Plain printable text (the common case) skips the per-character loop."""
    return not text.isprintable() or _HAS_BLANK_MARK.search(text) is not None


def normalize_text(text: str) -> str:
    """NFKC, digits in ASCII, invisible characters out, newlines unified, spacing collapsed, at most one
    blank line."""
    text = unicodedata.normalize("NFKC", text)
    text = _NEWLINES.sub("\n", text)
    if _needs_char_scan(text.replace("\n", " ").replace("\t", " ")):
        text = _drop_invisible(text)
    text = text.replace(_BRAILLE_BLANK, " ")
    text = _ascii_digits(text)  # after: "1\u200b\u20e3" is a keycap once the zero-width space is out
    text = _HSPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()
