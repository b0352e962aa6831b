"""Token-trie phrase matching for informal Indonesian posts, shared by the gazetteer and the category rules.

One trie walk per token keeps it fast enough to run on every post. Both the phrases and the text go
through :func:`fold` and :func:`tokenize`, so "KTP-el", "ktp el" and "ktpel" meet on equal terms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_REPEATS = re.compile(r"([^\W\d_])\1{2,}")
_ANY_TRIPLE = re.compile(r"(\w)\1\1")
_TOKEN = re.compile(r"[\w@#]+")
_HANDLE_MARKS = "@#"

# Informal spellings that should not each need their own alias. One token to one token only.
SYNONYMS: dict[str, str] = {
    "jln": "jalan",
    "mall": "mal",
    "tanggerang": "tangerang",
    "cileduk": "ciledug",
    "jl": "jalan",
    "ga": "tidak",
    "gak": "tidak",
    "gk": "tidak",
    "nggak": "tidak",
    "ngga": "tidak",
    "enggak": "tidak",
    "engga": "tidak",
    "tdk": "tidak",
    "kagak": "tidak",
    "blm": "belum",
    "sdh": "sudah",
    "udh": "sudah",
    "udah": "sudah",
    "yg": "yang",
    "dgn": "dengan",
    "kab": "kabupaten",
    "kec": "kecamatan",
    "kel": "kelurahan",
    "ds": "desa",
    "prov": "provinsi",
    "pemprop": "pemprov",
    "propinsi": "provinsi",
    "antri": "antre",
    "antrian": "antrean",
    "akte": "akta",
    "numpuk": "menumpuk",
    "bolong": "berlubang",
    "ancur": "hancur",
}

SUFFIXES: tuple[str, ...] = ("nya", "ny", "ku", "mu", "lah", "kah", "pun", "na", "ne", "e")
"""Clitics glued to nouns in informal posts ("samsatnya", "puskesmasnya"; Sundanese "puskesmasna",
Javanese "pdame"); stripped only at a phrase end, and only when what is left is a phrase."""

PREFIXES: tuple[str, ...] = ("di", "ke")
"""Prepositions typed without a space ("disamsat", "kedukcapil"); opt-in, since "diserang" is a verb."""

CONFUSABLES = str.maketrans(
    "АВЕКМНОРСТХЅІЈаеорсхуіјѕһԁԛԝӏкмнтвΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοικνρτυεχϲ",
    "abekmhopctxsijaeopcxyijshdqwlkmhtbabezhikmnoptyxaoikvptuexc",
)
"""Cyrillic and Greek letters that look like Latin ones, folded wherever tokens are compared (gazetteer,
category rules, topic terms; the stored text keeps them) and before lower-casing (a capital Greek "Ν" is an
"n", its small "ν" a "v"): "ѕаmsat" written to slip past keyword filters still names Samsat. Official
accounts are matched by their own key (``accounts.handle_key``): a look-alike handle is never an agency's
account."""

_END = ""  # trie key of a node's value; tokens are never empty
_MISSING = object()


def fold(text: str) -> str:
    """Lowercase, squeeze letters repeated 3+ times ("lamaaa" → "lama"), punctuation to spaces.

    ``@`` and ``#`` survive so that handles and hashtags stay one token.
    """
    return " ".join(_raw_tokens(text))


def _raw_tokens(text: str) -> list[str]:
    # "@dukcapil_kabserang" is "@dukcapil" + "kabserang": handles join their words with underscores
    if not text.isascii():
        text = text.translate(CONFUSABLES)
    text = text.lower().replace("_", " ")
    if _ANY_TRIPLE.search(text):  # cheap test first: the back-reference substitution is the slow part
        text = _REPEATS.sub(r"\1", text)
    return _TOKEN.findall(text)


def tokenize(text: str) -> list[str]:
    """Folded tokens with synonyms applied; bare ``@``/``#`` marks are dropped."""
    get = SYNONYMS.get
    return [get(tok, tok) for tok in _raw_tokens(text) if tok.strip(_HANDLE_MARKS)]


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    """Tokens ``start:end`` matched a phrase whose payload is ``value``."""

    start: int
    end: int
    value: T


class PhraseMatcher(Generic[T]):
    """Longest-match, left-to-right, non-overlapping phrase finder over a token trie."""

    def __init__(
        self, *, strip_prefixes: bool = False, min_stem: int = 3, keep_prefix: frozenset[str] = frozenset()
    ) -> None:
        self._root: dict[str, Any] = {}
        self._strip_prefixes = strip_prefixes
        self._min_stem = min_stem
        self._keep_prefix = keep_prefix
        """Words whose glued "di"/"ke" makes another word ("diserang" is "attacked"): never stripped."""

    @staticmethod
    def phrase_tokens(phrase: str) -> tuple[str, ...]:
        return tuple(tokenize(phrase))

    def get(self, tokens: Sequence[str]) -> T | None:
        node = self._root
        for tok in tokens:
            child = node.get(tok)
            if child is None:
                return None
            node = child
        return node.get(_END)

    def add(self, phrase: str | Sequence[str], value: T) -> None:
        """Add (or replace) a phrase; callers detect clashes themselves, with :meth:`get`."""
        toks = self.phrase_tokens(phrase) if isinstance(phrase, str) else tuple(phrase)
        if not toks:
            raise ValueError(f"phrase {phrase!r} has no tokens")
        node = self._root
        for tok in toks:
            node = node.setdefault(tok, {})
        node[_END] = value

    def add_joined(self, phrase: str | Sequence[str], value: T) -> None:
        """Add the run-together spelling of a multi-word phrase ("pasar kemis" → "pasarkemis") if free.

        Call after every real phrase is in, so that a run-together spelling never shadows one.
        """
        toks = self.phrase_tokens(phrase) if isinstance(phrase, str) else tuple(phrase)
        if len(toks) > 1:
            joined = ("".join(toks),)
            if self.get(joined) is None:
                self.add(joined, value)

    def _end_value(self, node: dict[str, Any], tok: str) -> Any:
        """Payload of a phrase ending at ``node`` with ``tok`` minus a clitic (or a glued "di"/"ke")."""
        if tok.endswith(SUFFIXES):
            for suffix in SUFFIXES:
                if tok.endswith(suffix) and len(tok) - len(suffix) >= self._min_stem:
                    child = node.get(tok[: -len(suffix)])
                    if child is not None and _END in child:
                        return child[_END]
        if (
            self._strip_prefixes
            and tok.startswith(PREFIXES)
            and len(tok) - 2 > self._min_stem
            and tok[2:] not in self._keep_prefix
        ):
            child = node.get(tok[2:])
            if child is not None and _END in child:
                return child[_END]
        return _MISSING

    def find(self, tokens: Sequence[str]) -> list[Match[T]]:
        root = self._root
        n = len(tokens)
        matches: list[Match[T]] = []
        i = 0
        while i < n:
            best_end = -1
            best_value: Any = None
            node = root
            j = i
            while j < n:
                tok = tokens[j]
                child = node.get(tok)
                if child is None and tok[0] in _HANDLE_MARKS:
                    tok = tok[1:]  # "#banjir" also matches as "banjir"
                    child = node.get(tok)
                if child is None or _END not in child:
                    value = self._end_value(node, tok)
                    if value is not _MISSING:
                        best_end, best_value = j + 1, value
                if child is None:
                    break
                node = child
                j += 1
                if _END in node:
                    best_end, best_value = j, node[_END]
            if best_end > i:
                matches.append(Match(i, best_end, best_value))
                i = best_end
            else:
                i += 1
        return matches
