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
_KEEP_CONTROLS = frozenset("\n\t")
_TAG_FIRST, _TAG_LAST = 0xE0020, 0xE007F
_BLACK_FLAG = "\U0001f3f4"

_NEWLINES = re.compile(r"\r\n|[\r\u2028\u2029\x85\x0b\x0c]")
_HSPACE = re.compile(r"[^\S\n]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _is_emoji_part(ch: str) -> bool:
    """Pictographs, skin-tone modifiers and the emoji variation selector."""
    return unicodedata.category(ch) == "So" or ch == "\ufe0f" or 0x1F3FB <= ord(ch) <= 0x1F3FF


def _drop_invisible(text: str) -> str:
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch == _ZWJ:
            if out and i < last and _is_emoji_part(out[-1]) and _is_emoji_part(text[i + 1]):
                out.append(ch)
            continue
        if ch in _ZERO_WIDTH:
            continue
        if _TAG_FIRST <= ord(ch) <= _TAG_LAST:
            if out and (out[-1] == _BLACK_FLAG or _TAG_FIRST <= ord(out[-1]) <= _TAG_LAST):
                out.append(ch)
            continue
        if ch not in _KEEP_CONTROLS and unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        out.append(ch)
    return "".join(out)


def _needs_char_scan(text: str) -> bool:
    """Plain printable text (the common case) skips the per-character loop."""
    return not text.isprintable()


def normalize_text(text: str) -> str:
    """NFKC, invisible characters out, newlines unified, spacing collapsed, at most one blank line."""
    text = unicodedata.normalize("NFKC", text)
    text = _NEWLINES.sub("\n", text)
    if _needs_char_scan(text.replace("\n", " ").replace("\t", " ")):
        text = _drop_invisible(text)
    text = _HSPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()
