"""First-version service category: weighted keywords plus agency priors.

A stop-gap until the transformer category head exists, kept as data (data/category_keywords.yaml) so
that the rules can be tuned without code changes. Each distinct keyword adds its weight to its
category; each recognised agency adds a prior to its usual category (the first-mentioned agency the
most). The top category wins; ties go to the category whose evidence came first. Confidence is
``top / (top + runner_up + 1)``: one strong keyword alone gives 0.67, agreeing evidence pushes it
towards 1, and competing evidence pulls it down. A post with no evidence at all is ``bukan_layanan``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.text.matcher import PhraseMatcher, tokenize
from schemas.vocab import Agency, Category

DATA_FILE: Traversable = files("pipeline.enrich").joinpath("data", "category_keywords.yaml")

STRONG_WEIGHT = 2.0
WEAK_WEIGHT = 1.0
FIRST_PRIOR = 1.0
OTHER_PRIOR = 0.5
NO_EVIDENCE_CONFIDENCE = 0.3


class CategoryGuess(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: Category
    confidence: float
    is_public_service: bool


@dataclass(frozen=True, slots=True)
class Keyword:
    category: Category
    weight: float
    phrase: str


class CategoryRulesError(ValueError):
    """Invalid keyword data; the message names the file and the key."""


class _Keywords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strong: list[str] = []
    weak: list[str] = []


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency_priors: dict[Agency, Category]
    categories: dict[Category, _Keywords]


class CategoryRules:
    def __init__(self, matcher: PhraseMatcher[Keyword], priors: dict[Agency, Category]) -> None:
        self._matcher = matcher
        self._priors = priors

    @classmethod
    def load(cls, path: Traversable | None = None) -> CategoryRules:
        path = path or DATA_FILE
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            rules = _RulesFile.model_validate(raw)
        except (OSError, yaml.YAMLError) as exc:
            raise CategoryRulesError(f"{path}: cannot read: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors(include_url=False)
            )
            raise CategoryRulesError(f"{path}: {problems}") from None
        missing = sorted(set(Agency) - set(rules.agency_priors))
        if missing:
            raise CategoryRulesError(f"{path}: agency_priors: no category for {missing}")

        matcher: PhraseMatcher[Keyword] = PhraseMatcher()
        owner: dict[tuple[str, ...], Keyword] = {}
        for category, words in rules.categories.items():
            for weight, phrases in ((STRONG_WEIGHT, words.strong), (WEAK_WEIGHT, words.weak)):
                for phrase in phrases:
                    toks = matcher.phrase_tokens(phrase)
                    where = f"categories.{category}"
                    if not toks:
                        raise CategoryRulesError(f"{path}: {where}: {phrase!r} has no words")
                    if toks in owner:
                        raise CategoryRulesError(
                            f"{path}: {where}: {phrase!r} is already under categories.{owner[toks].category}"
                        )
                    owner[toks] = Keyword(category, weight, phrase)
                    matcher.add(toks, owner[toks])
        for toks, keyword in owner.items():
            matcher.add_joined(toks, keyword)
        return cls(matcher, dict(rules.agency_priors))

    @property
    def priors(self) -> dict[Agency, Category]:
        """Each agency's usual category, in the data file's order."""
        return dict(self._priors)

    def classify(self, text: str, agencies: Sequence[Agency]) -> CategoryGuess:
        scores: dict[Category, float] = {}
        first_seen: dict[Category, int] = {}
        seen: set[str] = set()
        tokens = tokenize(text)
        for m in self._matcher.find(tokens):
            keyword = m.value
            if keyword.phrase in seen:
                continue  # a keyword repeated ten times is still one piece of evidence
            seen.add(keyword.phrase)
            scores[keyword.category] = scores.get(keyword.category, 0.0) + keyword.weight
            first_seen.setdefault(keyword.category, m.start)
        for index, agency in enumerate(dict.fromkeys(agencies)):
            category = self._priors[agency]
            scores[category] = scores.get(category, 0.0) + (FIRST_PRIOR if index == 0 else OTHER_PRIOR)
            first_seen.setdefault(category, len(tokens) + index)

        if not scores:
            return CategoryGuess(
                category=Category.BUKAN_LAYANAN, confidence=NO_EVIDENCE_CONFIDENCE, is_public_service=False
            )
        ranked = sorted(scores, key=lambda c: (-scores[c], first_seen[c]))
        top = scores[ranked[0]]
        runner_up = scores[ranked[1]] if len(ranked) > 1 else 0.0
        confidence = round(min(1.0, top / (top + runner_up + 1.0)), 3)
        return CategoryGuess(
            category=ranked[0],
            confidence=confidence,
            is_public_service=ranked[0] != Category.BUKAN_LAYANAN,
        )


@functools.lru_cache(maxsize=1)
def default_rules() -> CategoryRules:
    return CategoryRules.load()


def classify_category(text: str, agencies: Sequence[Agency]) -> CategoryGuess:
    """Category of a (masked) post given the agencies the gazetteer recognised in it."""
    return default_rules().classify(text, agencies)
