"""Rough language tag for Banten posts: Indonesian, Sundanese, Javanese (incl. Jawa Serang), English.

Posts are short and code-mixed, so a model-free vote over marker words is enough to route them and to
flag regional-language posts for review. Each marker adds its weight to its language; a regional
language or English wins only with at least :data:`MIN_FOREIGN` points from two or more marker words
and no fewer points than Indonesian, so one "euy" at the end of an Indonesian sentence stays "id".
Without any marker a post of :data:`MIN_WORDS` words or more is taken as Indonesian (the stream's
default); shorter posts and emoji-only posts are ``"und"``.
"""

from __future__ import annotations

import re

LANGS = ("id", "su", "jv", "en", "und")
MIN_WORDS = 3
MIN_FOREIGN = 2.0

_WORD = re.compile(r"[^\W\d_]+")
_REPEATS = re.compile(r"(.)\1{2,}")
_ANY_TRIPLE = re.compile(r"(.)\1\1")


def _words(text: str) -> list[str]:
    return text.split()


# 2.0: words that all but settle it; 1.0: words shared with neighbouring languages or slang.
_MARKERS: dict[str, dict[str, float]] = {
    "id": {
        **dict.fromkeys(
            _words(
                "yang dengan tidak sudah belum karena untuk bagaimana gimana kenapa mengapa tetapi tapi "
                "juga hanya cuma sangat banget bisa tolong mohon kami saya kita apakah kapan dimana "
                "udah gak nggak ngga enggak kok sih dong deh aja lagi sama dari pada kalau kalo"
            ),
            1.0,
        ),
        **dict.fromkeys(_words("ini itu ada di ke dan atau mau jadi masih"), 0.5),
    },
    "su": {
        **dict.fromkeys(
            _words(
                "euy atuh kumaha hese teu naon abdi mangga nuhun hatur pisan henteu moal anjeun "
                "sareng ieu kitu kieu jeung bade parantos keur kudu acan tiasa ulah lamun ayeuna"
            ),
            2.0,
        ),
        **dict.fromkeys(_words("mah teh urang aya oge wae tos sok"), 1.0),
    },
    # Standard Javanese and Jawa Serang (Jaseng: kite, sire, ore, bli, kuh, laka, mengkonon).
    "jv": {
        **dict.fromkeys(
            _words(
                "kite sire ore bli kuh kien laka mengkonon ora opo mboten nggih sampun matur nuwun "
                "kowe piye ngopo wes durung iki kuwi kae arep ndak lha wis sing ning neng karo"
            ),
            2.0,
        ),
        **dict.fromkeys(_words("geh pan ari yo ae"), 1.0),
    },
    "en": {
        **dict.fromkeys(
            _words(
                "the please thanks thank you very is are was were this that what why with have has "
                "should would will been from about their they your our just really"
            ),
            2.0,
        ),
        **dict.fromkeys(_words("so and of to it my we not for in on can"), 1.0),
    },
}

# A word may mark several languages; each then gets its weight.
_WEIGHTS: dict[str, tuple[tuple[str, float], ...]] = {}
for _lang, _marks in _MARKERS.items():
    for _mark, _weight in _marks.items():
        _WEIGHTS[_mark] = (*_WEIGHTS.get(_mark, ()), (_lang, _weight))


def detect_lang(text: str) -> str:
    """Return ``"id"``, ``"su"``, ``"jv"``, ``"en"`` or ``"und"``."""
    text = text.lower()
    if _ANY_TRIPLE.search(text):
        text = _REPEATS.sub(r"\1", text)  # "bangeeet" → "banget"
    words = _WORD.findall(text)
    if len(words) < 2:
        return "und"
    scores = {"id": 0.0, "su": 0.0, "jv": 0.0, "en": 0.0}
    hits = {"id": 0, "su": 0, "jv": 0, "en": 0}
    for word in words:
        for lang, weight in _WEIGHTS.get(word, ()):
            scores[lang] += weight
            hits[lang] += 1
    best = max(("su", "jv", "en"), key=lambda lang: scores[lang])
    if scores[best] >= MIN_FOREIGN and hits[best] >= 2 and scores[best] >= scores["id"]:
        return best
    if scores["id"] > 0 or len(words) >= MIN_WORDS:
        return "id"
    return "und"


_DEPRECATED = {"in": "id", "jw": "jv", "iw": "he", "ji": "yi"}
"""ISO 639 codes platforms still send: X tags Indonesian ``in``."""
_NO_LANGUAGE = frozenset({"und", "zxx", "mis", "mul", "art"})
"""Tags that say nothing about the language; so do ``q…`` ones (X's qme, qht, qam: media, hashtags or
mentions only)."""


def language_of(hint: str | None, text: str) -> str:
    """The post's language: the platform's tag as its primary language code (X's ``in`` is ``id``, ``en-US``
    is ``en``, so one language is one value in the index), except where it says nothing (``und``, X's
    ``qme``) or says Indonesian while Sundanese or Javanese markers decide otherwise (platforms do not tell
    them apart); :func:`detect_lang` where there is no tag."""
    code = hint.replace("_", "-").split("-")[0].lower() if hint else "und"
    code = _DEPRECATED.get(code, code)
    if code in _NO_LANGUAGE or code.startswith("q"):
        return detect_lang(text)
    if code == "id":  # the markers are read only where they can change the answer
        detected = detect_lang(text)
        return detected if detected in ("su", "jv") else code
    return code
