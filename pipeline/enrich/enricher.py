"""The enrichment of a batch of raw posts — the same code for the Faust agent, ``pantau classify`` and
the category head's training."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.enrich.category import CategoryGuess, classify_category
from pipeline.gazetteer.accounts import OfficialAccounts
from pipeline.gazetteer.recognizer import Gazetteer, Recognition, default_gazetteer
from pipeline.model.attribution import AttributionModel, check_same_layer
from pipeline.model.category import CATEGORIES, CategoryModel, decision_proba, evidence_features
from pipeline.model.encoder import Backend
from pipeline.model.layers import pick_layer
from pipeline.model.sentiment import SentimentModel
from pipeline.settings import Settings
from pipeline.text.lang import language_of
from pipeline.text.pii import PiiResult, mask_pii, mask_structure
from pipeline.validation import Rejected
from schemas.posts import EnrichedPost, RawPost
from schemas.vocab import Agency, Category, PiiKind


@dataclass(frozen=True)
class Evidence:
    """What the rules find in one text before any model runs."""

    masked: PiiResult
    found: Recognition
    guess: CategoryGuess


def gather_evidence(gazetteer: Gazetteer, text: str) -> Evidence:
    """Recognition reads the unmasked text (place names are not personal data); the keyword guess and
    every model see only the masked text."""
    masked = mask_pii(text)
    found = gazetteer.recognize(text)
    return Evidence(masked=masked, found=found, guess=classify_category(masked.text, found.agencies))


WORD = re.compile(r"[^\W\d_]{2,}")
"""A word: two or more letters (any script)."""


def nothing_to_judge(evidence: Evidence) -> bool:
    """A comment of at most one word with nothing the rules recognise: no agency, place or service keyword
    ("👍", "Amin", "first", "mantap", "?"). Such comments fill the threads connectors collect whole; the
    heads, which read a service into any text, made them public-service posts of an implied agency (counted
    in complaints and spikes). They are ``bukan_layanan`` with no implied agency; sentiment is kept."""
    found = evidence.found
    return (
        len(WORD.findall(evidence.masked.text)) < 2
        and not (found.mentions or found.addressed or found.places)
        and not evidence.guess.is_public_service
    )


NOT_A_SERVICE_ROW = np.eye(len(CATEGORIES))[CATEGORIES.index(Category.BUKAN_LAYANAN.value)]


def category_probabilities(
    category: CategoryModel, embeddings: np.ndarray, evidence: Sequence[Evidence]
) -> np.ndarray:
    """The category head's probabilities as the pipeline uses them (attribution reads them too), with
    ``nothing_to_judge`` posts set to ``bukan_layanan``."""
    proba = category.probabilities(embeddings, evidence_matrix(evidence))
    for row, item in enumerate(evidence):
        if nothing_to_judge(item):
            proba[row] = NOT_A_SERVICE_ROW
    return proba


PUBLIC_AUTHOR_FIELDS = frozenset({"id", "handle"})
"""The author's public identity on the platform, kept so an agency can answer the person. The display
name is masked like free text: it stays readable (no context marks it as a name) while the WhatsApp
number many Indonesian display names carry ("Budi 0812…") is masked."""
ENRICHMENT_FIELDS = frozenset(EnrichedPost.model_fields) - frozenset(RawPost.model_fields)
RENAMED_PREFIX = "raw_"
"""A raw field outside the contract named like a field the pipeline writes (a news feed's ``category``)
is kept as ``raw_<name>``: as it was, it collided with the enrichment and failed the post."""


def _kept_name(key: str, taken: dict[str, Any]) -> str:
    name = key
    while name in ENRICHMENT_FIELDS or (name != key and name in taken):
        name = RENAMED_PREFIX + name
    return name


def mask_other_fields(post: RawPost) -> tuple[dict[str, Any], set[PiiKind]]:
    """The post's fields besides ``text`` and ``lang``, with personal data masked wherever free text can
    carry it: the link (``wa.me/62…``), the place name, every field outside the contract (captions,
    quoted posts, strings among the metrics) and every author field beyond the public identity.
    Coordinates are kept for maps. Extra fields that clash with the enrichment are renamed
    (``_kept_name``)."""
    fields = post.model_dump(exclude={"text", "lang"})
    found: set[PiiKind] = set()

    def masked(value: Any) -> Any:
        value, kinds = mask_structure(value)
        found.update(kinds)
        return value

    if fields.get("url"):
        fields["url"] = masked(fields["url"])
    if fields.get("geo"):
        fields["geo"] = {k: v if k in ("lat", "lon") else masked(v) for k, v in fields["geo"].items()}
    if fields.get("author"):
        fields["author"] = {
            k: v if k in PUBLIC_AUTHOR_FIELDS else masked(v) for k, v in fields["author"].items()
        }
    if fields.get("metrics"):  # counts stay numbers; a string a platform put there is free text
        fields["metrics"] = masked(fields["metrics"])
    for key in post.model_extra or {}:
        value = masked(fields.pop(key))
        fields[_kept_name(key, fields)] = value
    return fields, found


def evidence_matrix(evidence: Sequence[Evidence]) -> np.ndarray:
    return evidence_features([e.guess for e in evidence], [e.found.agencies for e in evidence])


class Enricher:
    """Agency and region, PII masking, then one encoder pass feeding the sentiment and category heads."""

    def __init__(
        self,
        sentiment: SentimentModel,
        category: CategoryModel,
        gazetteer: Gazetteer | None = None,
        accounts: OfficialAccounts | None = None,
        attribution: AttributionModel | None = None,
    ) -> None:
        check_same_layer(category.layer, attribution)
        self.sentiment = sentiment
        self.category = category
        self.attribution = attribution
        self.gazetteer = gazetteer or default_gazetteer()
        self.accounts = accounts or OfficialAccounts.load()

    @classmethod
    def load(
        cls,
        model_dir: Path,
        max_length: int = 128,
        threads: int = 2,
        backend: Backend = "fp32",
        accounts_file: Path | None = None,
    ) -> Enricher:
        return cls(
            SentimentModel.load(model_dir, backend=backend, max_length=max_length, threads=threads),
            CategoryModel.load(model_dir),
            accounts=OfficialAccounts.load(accounts_file),
            attribution=AttributionModel.load(model_dir),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Enricher:
        """What the worker and ``pantau classify`` run: the ``PANTAU_MODEL_*`` settings."""
        return cls.load(
            settings.model_dir,
            settings.model_max_length,
            settings.model_threads,
            settings.model_backend,
            settings.accounts_file,
        )

    def official_account(self, post: RawPost) -> Agency | None:
        author = post.author
        if author is None:
            return None
        account = self.accounts.find(post.platform.value, author.id, author.handle)
        return account.agency if account else None

    @property
    def model_version(self) -> str:
        parts = [self.sentiment.version, self.category.version]
        if self.attribution is not None:
            parts.append(self.attribution.version)
        return "+".join(parts)

    def enrich(self, posts: Sequence[RawPost]) -> list[EnrichedPost | Rejected]:
        return [result for result, _ in self.enrich_with_embeddings(posts)]

    def enrich_with_embeddings(
        self, posts: Sequence[RawPost]
    ) -> list[tuple[EnrichedPost | Rejected, np.ndarray | None]]:
        """Each post's result and, when enriched, its topic embedding (the topic stage clusters these)."""
        results: list[tuple[EnrichedPost | Rejected, np.ndarray | None]] = []
        staged: list[tuple[int, RawPost, Evidence]] = []
        for index, post in enumerate(posts):
            evidence = gather_evidence(self.gazetteer, post.text)
            problem = self.sentiment.check_encodable(evidence.masked.text)
            results.append((Rejected("enrich", problem or "pending"), None))  # replaced below when encodable
            if problem is None:
                staged.append((index, post, evidence))
        if not staged:
            return results
        embeddings, topic_embeddings = self.sentiment.embed_with_topics([e.masked.text for _, _, e in staged])
        sentiments = self.sentiment.predictions_from_proba(
            self.sentiment.probabilities_from_embeddings(embeddings)
        )
        # both heads read one layer (``check_same_layer``)
        head_embeddings = pick_layer(self.category.layer, embeddings, topic_embeddings)
        category_proba = category_probabilities(self.category, head_embeddings, [e for _, _, e in staged])
        categories = self.category.predictions(decision_proba(category_proba))
        now = datetime.now(UTC)
        for row, ((index, post, evidence), sentiment, category) in enumerate(
            zip(staged, sentiments, categories, strict=True)
        ):
            text = evidence.masked.text
            fields, found_elsewhere = mask_other_fields(post)
            official = self.official_account(post)
            agencies = evidence.found.agencies
            if self.attribution is not None:
                found = evidence.found
                agencies = self.attribution.attribute(
                    head_embeddings[row],
                    category_proba[row],
                    agencies,
                    text,
                    found.addressed,
                    found.elsewhere,
                    found.likened,
                )
            if official is not None and official not in agencies:
                agencies = [official, *agencies]  # an agency's own post is about that agency
            enriched = EnrichedPost(
                **fields,
                text=text,
                lang=language_of(post.lang, text),
                agencies=agencies,
                mentions=evidence.found.mentions,
                official_account=official,
                region=evidence.found.region,
                places=evidence.found.places,
                sentiment=sentiment,
                category=category.category,
                category_confidence=category.confidence,
                is_public_service=category.is_public_service,
                pii=sorted(set(evidence.masked.kinds) | found_elsewhere),
                model_version=self.model_version,
                processed_at=now,
            )
            results[index] = (enriched, topic_embeddings[row])
        return results
