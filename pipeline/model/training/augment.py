"""Label-keeping variants of labelled posts that teach the labelling guideline's order of rules.

Students learned from reviews that a question is neutral and that thanks are positive, so a complaint asked as
a question ("jalan rusak parah, kapan dibenerin?") or closed with thanks came out neutral or positive. Rule 1
of ``data/indomain/GUIDELINES.md`` says a reported failure stays negative whatever question or courtesy goes
with it; rule 2 says thanks or praise stay positive with a plain request after them. Each variant is a
labelled post with such words added and its label kept; plain requests are added to neutral posts too, so
that a question alone never decides the label.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.atomic_files import write_lines

FOLLOW_UPS: tuple[str, ...] = (
    "kapan dibenerin?",
    "kapan diperbaiki?",
    "kapan diperbaiki min?",
    "kok dibiarin aja?",
    "sampai kapan kayak gini?",
    "kenapa belum ada tindakan?",
    "kapan ditindak?",
    "harus lapor ke mana lagi?",
    "kok gak ada yang ngecek?",
    "kapan beresnya?",
    "ini gimana tanggung jawabnya?",
    "kapan ada solusinya?",
)
"""Questions that ask after a failure the post reports (rule 1)."""

THANKS: tuple[str, ...] = (
    "terima kasih 🙏",
    "makasih min",
    "makasih banyak ya",
)
"""Thanks alone: after a complaint they keep it negative (rule 1), after praise positive (rule 2)."""

COURTESIES: tuple[str, ...] = (
    *THANKS,
    "mohon bantuannya, terima kasih",
    "tolong ya min, makasih",
    "mohon maaf sebelumnya 🙏",
)
"""Courtesies that do not change a complaint (rule 1)."""

PLAIN_REQUESTS: tuple[str, ...] = (
    "min, besok buka jam berapa ya?",
    "kalau hari sabtu buka gak min?",
    "boleh minta info jadwalnya?",
    "syaratnya apa aja ya min?",
    "mau tanya, bisa daftar online juga?",
    "infonya ada di mana ya min?",
    "min, nomor WA-nya berapa?",
    "kalau mau daftar ke mana ya?",
)
"""Plain information requests: they keep a positive post positive (rule 2) and a neutral one neutral."""


LABELS = ("negative", "neutral", "positive")
QUESTION_SHARE = 0.75
"""Of the complaints that do not ask yet, the share that get a question alone; the rest get a question
and thanks, so that thanks after a complaint are seen too (both are rule 1) without outnumbering questions."""
THANKS_SHARE = 0.5
"""Of the positive posts, the share whose plain request is followed by thanks: about as many as the
complaints that end with a courtesy, so that thanks stay evidence of neither label (a model that only saw
thanks after complaints learned that thanks are negative)."""


@dataclass(frozen=True)
class Variant:
    """One added training post: the source's text with a tail, its label unchanged, and where it came from."""

    text: str
    label: str
    source_id: str
    rule: str
    """The guideline rule the tail follows, for whoever audits the file ("1: question", "2: request" ...)."""


def variants(posts: Iterable[tuple[str, str, str]], seed: int = 0) -> list[Variant]:
    """One variant per labelled post (source, text, label) with text: negatives without a question get a
    follow-up question (sometimes with a courtesy), negatives with one get a courtesy, positives a plain
    request (half of them followed by thanks) and neutrals a plain request. Deterministic for a seed; a
    label other than the three is an error."""
    rng = random.Random(seed)
    out: list[Variant] = []
    for source, raw, label in posts:
        if label not in LABELS:
            raise ValueError(f"{source}: unknown sentiment label {label!r} (expected one of {LABELS})")
        text = raw.strip()
        if not text:
            continue
        if label == "negative":
            if "?" in text:
                out.append(Variant(_join(text, rng.choice(COURTESIES)), label, source, "1: courtesy"))
            elif rng.random() < QUESTION_SHARE:
                out.append(Variant(_join(text, rng.choice(FOLLOW_UPS)), label, source, "1: question"))
            else:
                tail = f"{rng.choice(FOLLOW_UPS)} {rng.choice(COURTESIES)}"
                out.append(Variant(_join(text, tail), label, source, "1: question and courtesy"))
        elif label == "positive" and rng.random() < THANKS_SHARE:
            tail = f"{rng.choice(PLAIN_REQUESTS)} {rng.choice(THANKS)}"
            out.append(Variant(_join(text, tail), label, source, "2: request and thanks"))
        else:
            rule = "2: request" if label == "positive" else "3: request"
            out.append(Variant(_join(text, rng.choice(PLAIN_REQUESTS)), label, source, rule))
    return out


def _join(text: str, tail: str) -> str:
    """The tail as a new sentence, as people add it: a full stop first when the post ends in a letter or
    digit, none after its own punctuation or an emoji."""
    if text[-1].isalnum():
        text += "."
    return f"{text} {tail}"


def write_variants(found: Sequence[Variant], out: Path) -> None:
    """JSONL with text, sentiment and the provenance the trainer ignores (source post, rule applied); written
    whole or not at all, so a failed run never leaves a half file for training to read."""
    records = (
        {"text": v.text, "sentiment": v.label, "source_id": v.source_id, "rule": v.rule} for v in found
    )
    write_lines(out, (json.dumps(record, ensure_ascii=False) for record in records))
