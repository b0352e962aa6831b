"""Topic terms: content tokens of a post, lexical vectors for clustering, c-TF-IDF labels.

Short informal posts share a story through a few content words (a place, a service, "banjir"), which the
sentence encoder alone blurs, so the same tokens serve both the lexical half of the similarity and the
labels. Tokens come from :func:`pipeline.text.matcher.tokenize` so slang spellings meet ("antri" →
"antre").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib.resources import files
from itertools import pairwise

import numpy as np
import yaml
from scipy import sparse

from pipeline.gazetteer.recognizer import default_gazetteer
from pipeline.text.matcher import tokenize
from pipeline.text.pii import TOKENS as PII_TOKENS
from schemas.vocab import Agency

STOPWORDS_FILE = files("pipeline.topics").joinpath("data", "stopwords.txt")
DIALECTS_FILE = files("pipeline.topics").joinpath("data", "dialects.yaml")
INDONESIAN = "id"
LABEL_SEPARATOR = " · "

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MASKS = re.compile("|".join(re.escape(t) for t in PII_TOKENS.values()))
_HAS_DIGIT = re.compile(r"\d")
_AGENCY_NAMES = tuple(a.value for a in Agency)
_MIN_LEN = 3
_CLITIC = "nya"


@lru_cache(maxsize=1)
def dialect_words() -> dict[str, frozenset[str]]:
    """Function words of each regional register (``su`` Sundanese, ``jv`` Javanese-Serang)."""
    data = yaml.safe_load(DIALECTS_FILE.read_text(encoding="utf-8"))
    return {name: frozenset(str(w) for w in words) for name, words in data.items() if name != "lexicon"}


@lru_cache(maxsize=1)
def dialect_lexicon() -> dict[str, str]:
    """Dialect content word → the Indonesian word for it, all dialects together: one story told in two
    registers then shares its terms, and its label reads the same whoever wrote most of it."""
    data = yaml.safe_load(DIALECTS_FILE.read_text(encoding="utf-8"))
    return {str(k): str(v) for table in data.get("lexicon", {}).values() for k, v in table.items()}


@lru_cache(maxsize=1)
def _indonesian_stopwords() -> frozenset[str]:
    words: set[str] = set()
    for line in STOPWORDS_FILE.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            words.add(word)
    return frozenset(words)


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """Indonesian function words and filler, plus every dialect's function words."""
    words = set(_indonesian_stopwords())
    for dialect in dialect_words().values():
        words |= dialect
    return frozenset(words)


@lru_cache(maxsize=1)
def register_markers() -> dict[str, frozenset[str]]:
    """Each dialect's function words that Indonesian does not use ("tapi", "mana", "tau" tell nothing)."""
    indonesian = _indonesian_stopwords()
    return {name: words - indonesian for name, words in dialect_words().items()}


def register(text: str) -> str:
    """The register a post is written in: the dialect with most of its own markers (at least two), else
    Indonesian. Words two dialects share decide nothing."""
    return _register(tokenize(text))


def _register(tokens: Sequence[str]) -> str:
    counts: Counter[str] = Counter()
    markers = register_markers()
    for tok in tokens:
        owners = [name for name, words in markers.items() if tok in words]
        if len(owners) == 1:
            counts[owners[0]] += 1
    best = counts.most_common(2)
    if not best or best[0][1] < 2 or (len(best) == 2 and best[1][1] == best[0][1]):
        return INDONESIAN
    return best[0][0]


def _keep_handle(tok: str) -> str | None:
    """A handle is kept (without ``@``) only if it names an agency: people's handles are noise, and PII."""
    name = tok.lstrip("@")
    return name if any(a in name for a in _AGENCY_NAMES) else None


def content_tokens(text: str) -> list[str]:
    """Folded content words in order: no URLs, PII masks, stopwords, numbers, short or personal handles."""
    return analyse(text)[0]


def analyse(text: str) -> tuple[list[str], str]:
    """Content tokens and register of a post, from one tokenisation (``add`` runs on every post)."""
    text = _MASKS.sub(" ", _URL.sub(" ", text))
    stop = stopwords()
    lexicon = dialect_lexicon()
    out: list[str] = []
    tokens = tokenize(text)
    for raw in tokens:
        tok: str | None = raw
        if raw[0] == "@":
            tok = _keep_handle(raw)
        elif raw[0] == "#":
            tok = raw.lstrip("#")
        if not tok:
            continue
        if tok.endswith(_CLITIC) and len(tok) - len(_CLITIC) >= _MIN_LEN:
            tok = tok[: -len(_CLITIC)]  # "lampunya" → "lampu"
        tok = tok.replace("_", "")
        tok = lexicon.get(tok, tok)
        if len(tok) < _MIN_LEN or tok in stop or _HAS_DIGIT.search(tok):
            continue
        out.append(tok)
    return out, _register(tokens)


def lexical_terms(tokens: Sequence[str]) -> list[str]:
    """Content tokens as the lexical similarity counts them: a multi-word place name is one term.

    Counted word by word, "pasar kemis" weighed twice as much as "ciruas", and a shared two-word place
    alone held unrelated complaints together: an oversized chatter topic "pasar kemis · air pdam · pabrik"
    in 3 of 80 batchings of the synthetic days; 1 with places joined; none once "dibantu" (of the closer
    "tolong dibantu") became a stopword too.
    """
    return default_gazetteer().join_places(tokens)


def lexical_matrix(docs: Sequence[Sequence[str]]) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows over the window's own vocabulary (sublinear tf, smoothed idf).

    Rebuilt at every update from the window, so the idf reflects what is common *now*: a word every
    post uses stops linking posts.
    """
    vocab: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    counts: list[float] = []
    for doc in docs:
        for tok, n in Counter(doc).items():
            indices.append(vocab.setdefault(tok, len(vocab)))
            counts.append(1.0 + math.log(n))
        indptr.append(len(indices))
    m = sparse.csr_matrix(
        (np.asarray(counts, dtype=np.float32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(len(docs), max(len(vocab), 1)),
    )
    df = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float32)
    idf = np.log((1.0 + len(docs)) / (1.0 + df)) + 1.0
    m = sparse.csr_matrix(m @ sparse.diags(idf.astype(np.float32)))
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags((1.0 / norms).astype(np.float32)) @ m)


def terms_with_bigrams(tokens: Sequence[str]) -> list[str]:
    """Unigrams plus bigrams of adjacent content tokens (adjacent after stopword removal)."""
    return [*tokens, *(f"{a} {b}" for a, b in pairwise(tokens) if a != b)]


def ctfidf_terms(
    clusters: Sequence[Iterable[Sequence[str]]],
    background: Iterable[Sequence[str]] = (),
    *,
    top: int = 10,
    min_df: int = 2,
) -> list[list[str]]:
    """Most distinctive terms of each cluster by class-based TF-IDF (BERTopic's c-TF-IDF).

    Each cluster is one "class document"; ``background`` (the window's unclustered posts) is one more
    class, so words common in everyday chatter score low. weight(t, c) = tf(t, c) / |c| ·
    log(1 + A / f(t)), A the mean class length, f(t) the count of t over all classes. A term must occur
    in ``min_df`` posts of the cluster, so one post's quirk never names a topic.
    """
    class_tf: list[Counter[str]] = []
    class_df: list[Counter[str]] = []
    for docs in [*clusters, background]:
        tf: Counter[str] = Counter()
        df: Counter[str] = Counter()
        for doc in docs:
            terms = terms_with_bigrams(doc)
            tf.update(terms)
            df.update(set(terms))
        class_tf.append(tf)
        class_df.append(df)
    total: Counter[str] = Counter()
    for tf in class_tf:
        total.update(tf)
    avg_len = sum(total.values()) / max(len(class_tf), 1)
    out: list[list[str]] = []
    for tf, df in zip(class_tf[:-1], class_df[:-1], strict=True):
        size = max(sum(tf.values()), 1)
        scored = [
            (n / size * math.log(1.0 + avg_len / total[t]), t) for t, n in tf.items() if df[t] >= min_df
        ]
        scored.sort(key=lambda s: (-s[0], s[1]))
        out.append([t for _, t in scored[:top]])
    return out


def label_from_terms(terms: Sequence[str], n: int = 3) -> str:
    """Join the best ``n`` terms, skipping one whose words are all covered by terms already taken."""
    chosen: list[str] = []
    covered: set[str] = set()
    for term in terms:
        words = set(term.split())
        if words <= covered:
            continue
        # a bigram that extends a chosen unigram replaces it ("banjir" + "banjir lebak" → "banjir lebak")
        chosen = [c for c in chosen if not set(c.split()) < words]
        chosen.append(term)
        covered |= words
        if len(chosen) == n:
            break
    return LABEL_SEPARATOR.join(chosen)
