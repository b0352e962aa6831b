"""The enrichment of a batch of raw posts — the same code for the Faust agent and ``pantau classify``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pipeline.enrich.category import classify_category
from pipeline.gazetteer.recognizer import Gazetteer, default_gazetteer
from pipeline.model.sentiment import SentimentModel
from pipeline.text.lang import detect_lang
from pipeline.text.pii import PiiResult, mask_pii
from pipeline.validation import Rejected
from schemas.posts import EnrichedPost, RawPost, Sentiment


class Enricher:
    """Recognise agency and region, mask personal data, classify sentiment and category.

    Recognition reads the unmasked text (place names are not personal data); the models and every
    output see only the masked text.
    """

    def __init__(self, model: SentimentModel, gazetteer: Gazetteer | None = None) -> None:
        self.model = model
        self.gazetteer = gazetteer or default_gazetteer()

    @classmethod
    def load(cls, model_dir: Path, max_length: int = 128, threads: int = 2) -> Enricher:
        return cls(SentimentModel.load(model_dir, max_length=max_length, threads=threads))

    @property
    def model_version(self) -> str:
        return self.model.version

    def enrich(self, posts: Sequence[RawPost]) -> list[EnrichedPost | Rejected]:
        results: list[EnrichedPost | Rejected] = []
        staged: list[tuple[int, RawPost, PiiResult]] = []
        for index, post in enumerate(posts):
            masked = mask_pii(post.text)
            problem = self.model.check_encodable(masked.text)
            if problem:
                results.append(Rejected("enrich", problem))
            else:
                results.append(Rejected("enrich", "pending"))  # replaced below
                staged.append((index, post, masked))
        predictions = self.model.predict([masked.text for _, _, masked in staged]) if staged else []
        now = datetime.now(UTC)
        for (index, post, masked), prediction in zip(staged, predictions, strict=True):
            found = self.gazetteer.recognize(post.text)
            text = masked.text
            guess = classify_category(text, found.agencies)
            data = post.model_dump(exclude={"text", "lang"})
            results[index] = EnrichedPost(
                **data,
                text=text,
                lang=post.lang or detect_lang(text),
                agencies=found.agencies,
                region=found.region,
                places=found.places,
                sentiment=Sentiment(label=prediction.label, score=prediction.score, scores=prediction.scores),
                category=guess.category,
                category_confidence=guess.confidence,
                is_public_service=guess.is_public_service,
                pii=masked.kinds,
                model_version=self.model.version,
                processed_at=now,
            )
        return results
