"""Shrink the 250k-piece multilingual vocabulary to the pieces Indonesian-language posts actually use.

Word embeddings are most of mE5-small's weights, and most rows belong to scripts we never see. The Unigram
Viterbi search over a subset that still contains the best segmentation returns that same segmentation, so for
covered text the trimmed model's tokens and outputs are identical; single characters are kept so unseen words
still split into known pieces instead of ``<unk>``. Every printable-ASCII piece is kept as well (about 83k of
the 250k), which keeps segmentation identical to full mE5 for any ASCII text: slang, typos and English in
posts never seen at build time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SPECIAL_PIECES = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
META = "▁"
_ASCII_PIECE = re.compile("▁?[\x21-\x7e]+")


def _is_kept_char(ch: str) -> bool:
    """Latin letters, digits, punctuation and symbols (emoji are category So) stay as fallback pieces."""
    cat = unicodedata.category(ch)
    if cat[0] in "PS" or cat == "Nd":
        return True
    return cat[0] == "L" and unicodedata.name(ch, "").startswith("LATIN")


def fallback_piece_ids(pieces: list[tuple[str, float]]) -> set[int]:
    """Specials, printable-ASCII pieces, single characters (with or without ``▁``), the lowest-scoring piece.

    The lowest score fixes the ``<unk>`` penalty (min score − 10), so keeping it keeps segmentations that
    contain unknown characters identical too.
    """
    keep = {i for i, (p, _) in enumerate(pieces) if p in SPECIAL_PIECES or p == META}
    for i, (p, _) in enumerate(pieces):
        core = p[1:] if p.startswith(META) else p
        if (len(core) == 1 and _is_kept_char(core)) or _ASCII_PIECE.fullmatch(p):
            keep.add(i)
    keep.add(int(np.argmin([s for _, s in pieces])))
    return keep


def used_piece_ids(tokenizer: Tokenizer, texts: Iterable[str], batch: int = 1024) -> set[int]:
    """Every piece id the tokenizer emits for ``texts`` (no truncation)."""
    tokenizer.no_truncation()
    used: set[int] = set()
    buf: list[str] = []
    for text in texts:
        buf.append(text)
        if len(buf) >= batch:
            for enc in tokenizer.encode_batch(buf):
                used.update(enc.ids)
            buf.clear()
    for enc in tokenizer.encode_batch(buf):
        used.update(enc.ids)
    return used


@dataclass(frozen=True)
class TrimResult:
    pieces: list[tuple[str, float]]
    old_ids: np.ndarray
    """``old_ids[new_id]`` is the piece's id in the full vocabulary: the embedding rows to keep."""


def trim_vocab(pieces: list[tuple[str, float]], keep: set[int]) -> TrimResult:
    """Keep ``keep`` (ascending, so the specials stay at ids 0-3) with their original Unigram scores."""
    old_ids = np.array(sorted(keep), dtype=np.int64)
    return TrimResult([pieces[i] for i in old_ids], old_ids)


def segmentation_mismatches(full: Tokenizer, trimmed: Tokenizer, texts: Iterable[str]) -> list[str]:
    """Texts whose token strings differ between the full and trimmed tokenizers (should be empty)."""
    bad: list[str] = []
    for text in texts:
        if full.encode(text).tokens != trimmed.encode(text).tokens:
            bad.append(text)
    return bad
