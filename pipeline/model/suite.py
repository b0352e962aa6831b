"""``pantau model eval --suite``: every domain's test set and the in-domain attribution in one table.

The model card and the issue's targets compare models per domain (SmSA, NusaX, in-domain, DKK Semarang);
running them one ``--data`` at a time made it easy to leave one out. A set is one line of ``SENTIMENT_SETS``;
a file that is not there (a split someone has yet to add) is listed as missing, not an error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.model.data import DATA_DIR, INDOMAIN_DIR, SMSA_DIR, load_labelled, read_jsonl, record_text
from pipeline.model.evaluate import EvalReport, evaluate
from pipeline.model.train_attribution import AttributionScore, per_agency, score_attribution
from schemas.vocab import Agency, Region

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.enrich.enricher import Enricher


@dataclass(frozen=True)
class SuiteSet:
    name: str
    path: Path


SENTIMENT_SETS: tuple[SuiteSet, ...] = (
    SuiteSet("SmSA", SMSA_DIR / "test_preprocess.tsv"),
    SuiteSet("NusaX Javanese", DATA_DIR / "sentiment" / "nusax_senti_jav" / "test.csv"),
    SuiteSet("NusaX Sundanese", DATA_DIR / "sentiment" / "nusax_senti_sun" / "test.csv"),
    SuiteSet("in-domain", INDOMAIN_DIR / "test.jsonl"),
    SuiteSet("in-domain added", INDOMAIN_DIR / "test2.jsonl"),
    SuiteSet("DKK Semarang", DATA_DIR / "sentiment" / "dkk_semarang" / "test.csv"),
)
"""Sentiment test sets of the suite, in the order of the table."""

ATTRIBUTION_SETS: tuple[SuiteSet, ...] = (
    SuiteSet("in-domain", INDOMAIN_DIR / "test.jsonl"),
    SuiteSet("in-domain added", INDOMAIN_DIR / "test2.jsonl"),
)
"""Labelled in-domain posts (``agencies``, ``category``, ``region``) that the pipeline's enrichment is scored
on."""


@dataclass(frozen=True)
class AttributionReport:
    """What the enrichment gets right about a labelled post besides its sentiment."""

    n: int
    agencies: AttributionScore
    """Micro counts over (post, agency) pairs."""
    per_agency: dict[Agency, AttributionScore]
    category_accuracy: float
    category_errors: dict[str, Counter[str]]
    """True category → the categories it was taken for (wrong ones only)."""
    region_accuracy: float = 0.0
    """BPS code of the kab/kota, or none, as labelled."""
    region_errors: dict[str, Counter[str]] = field(default_factory=dict)
    """True region → the regions it was taken for (``none``: no region)."""


def _confusions(predicted: Sequence[str], gold: Sequence[str]) -> tuple[float, dict[str, Counter[str]]]:
    """Accuracy, and each true value → the values it was taken for (wrong ones only)."""
    errors: dict[str, Counter[str]] = {}
    right = 0
    for pred, want in zip(predicted, gold, strict=True):
        if pred == want:
            right += 1
        else:
            errors.setdefault(want, Counter())[pred] += 1
    return (right / len(gold) if gold else 0.0), dict(sorted(errors.items()))


NO_REGION = "none"


def score_enrichment(
    predicted_agencies: Sequence[Sequence[str]],
    gold_agencies: Sequence[Sequence[str]],
    predicted_categories: Sequence[str],
    gold_categories: Sequence[str],
    predicted_regions: Sequence[str | None] | None = None,
    gold_regions: Sequence[str | None] | None = None,
) -> AttributionReport:
    """Agency micro-F1 with each agency's errors, category accuracy with each category's confusions and,
    given regions, region accuracy with its confusions."""
    n = len(gold_agencies)
    if not n == len(predicted_agencies) == len(predicted_categories) == len(gold_categories):
        raise ValueError("predictions and labels differ in length")
    predicted = [[Agency(a) for a in pred] for pred in predicted_agencies]
    gold = [{Agency(a) for a in want} for want in gold_agencies]
    category_accuracy, category_errors = _confusions(predicted_categories, gold_categories)
    predicted_regions, gold_regions = predicted_regions or [], gold_regions or []
    if len(predicted_regions) != len(gold_regions) or len(gold_regions) not in (0, n):
        raise ValueError("region predictions and labels differ in length")
    region_accuracy, region_errors = _confusions(
        [r or NO_REGION for r in predicted_regions], [r or NO_REGION for r in gold_regions]
    )
    return AttributionReport(
        n=n,
        agencies=score_attribution(predicted, gold),
        per_agency=per_agency(predicted, gold),
        category_accuracy=category_accuracy,
        category_errors=category_errors,
        region_accuracy=region_accuracy,
        region_errors=region_errors,
    )


@dataclass
class SuiteReport:
    model_version: str
    backend: str
    sentiment: list[tuple[SuiteSet, EvalReport]] = field(default_factory=list)
    attribution: list[tuple[SuiteSet, AttributionReport]] = field(default_factory=list)
    missing: list[SuiteSet] = field(default_factory=list)


def _raw_posts(path: Path) -> tuple[list[dict[str, Any]], list[list[str]], list[str], list[str | None]]:
    """Raw posts as a connector would deliver them (an official reply with its author's handle), with the
    ``agencies``, ``category`` and ``region`` labels (a missing region: none)."""
    posts, agencies, categories, regions = [], [], [], []
    for lineno, row in read_jsonl(path):
        text = record_text(path, lineno, row)
        labelled = row.get("agencies")
        if not isinstance(labelled, list) or "category" not in row:
            raise ValueError(f"{path}:{lineno}: expected 'agencies' (a list) and 'category'")
        region = row.get("region")
        try:
            agencies.append([Agency(a).value for a in labelled])
            regions.append(None if region is None else Region(str(region)).value)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from None
        categories.append(str(row["category"]))
        post: dict[str, Any] = {
            "id": str(row.get("id") or f"line{lineno}"),
            "platform": str(row.get("platform") or "other"),
            "text": text,
            "created_at": datetime(2026, 12, 1, tzinfo=UTC).isoformat(),
        }
        if row.get("author"):
            post["author"] = {"handle": str(row["author"])}
        posts.append(post)
    return posts, agencies, categories, regions


def score_attribution_file(enricher: Enricher, path: Path) -> AttributionReport:
    from pipeline.validation import Rejected, validate_raw_post

    raw, gold_agencies, gold_categories, gold_regions = _raw_posts(path)
    results = enricher.enrich([validate_raw_post(post) for post in raw])
    predicted_agencies: list[list[str]] = []
    predicted_categories: list[str] = []
    predicted_regions: list[str | None] = []
    for result in results:
        if isinstance(result, Rejected):  # counts as wrong on every label rather than vanishing
            predicted_agencies.append([])
            predicted_categories.append(f"(rejected: {result.reason})")
            predicted_regions.append(f"(rejected: {result.reason})")
            continue
        predicted_agencies.append([a.value for a in result.agencies])
        predicted_categories.append(result.category.value)
        predicted_regions.append(result.region.value if result.region else None)
    return score_enrichment(
        predicted_agencies,
        gold_agencies,
        predicted_categories,
        gold_categories,
        predicted_regions,
        gold_regions,
    )


def run_suite(
    enricher: Enricher,
    backend: str,
    sentiment_sets: Sequence[SuiteSet] = SENTIMENT_SETS,
    attribution_sets: Sequence[SuiteSet] = ATTRIBUTION_SETS,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> SuiteReport:
    """Score the enricher's sentiment model on each sentiment set (as ``pantau model eval --data``), and its
    whole enrichment (gazetteer, attribution, category) on each attribution set. ``progress(name, total)``
    returns the callback that a batch's count is passed to."""
    report = SuiteReport(model_version=enricher.model_version, backend=backend)
    for suite_set in sentiment_sets:
        if not suite_set.path.exists():
            report.missing.append(suite_set)
            continue
        texts, labels = load_labelled(suite_set.path)
        advance = progress(suite_set.name, len(texts)) if progress else None
        report.sentiment.append((suite_set, evaluate(enricher.sentiment, texts, labels, advance)))
    for suite_set in attribution_sets:
        if not suite_set.path.exists():
            if suite_set not in report.missing:
                report.missing.append(suite_set)
            continue
        report.attribution.append((suite_set, score_attribution_file(enricher, suite_set.path)))
    return report


def _where(path: Path) -> str:
    try:
        return str(path.relative_to(DATA_DIR.parent))
    except ValueError:
        return str(path)


def sentiment_rows(report: SuiteReport) -> list[list[object]]:
    return [
        [
            s.name,
            _where(s.path),
            r.n,
            f"{r.macro_f1:.3f}",
            f"{r.macro_f1_95[0]:.3f}–{r.macro_f1_95[1]:.3f}",
            f"{r.accuracy:.3f}",
            f"{r.ece:.3f}",
        ]
        for s, r in report.sentiment
    ]


SENTIMENT_HEADERS = ["sentiment test set", "file", "n", "macro-F1", "95 % interval", "accuracy", "ECE"]
ATTRIBUTION_HEADERS = [
    "attribution set",
    "n",
    "agency micro-F1",
    "right",
    "false",
    "missed",
    "category acc.",
    "region acc.",
]
AGENCY_HEADERS = ["agency", "right", "false", "missed", "F1"]


def attribution_rows(report: SuiteReport) -> list[list[object]]:
    return [
        [
            s.name,
            a.n,
            f"{a.agencies.micro_f1:.3f}",
            a.agencies.tp,
            a.agencies.fp,
            a.agencies.fn,
            f"{a.category_accuracy:.3f}",
            f"{a.region_accuracy:.3f}",
        ]
        for s, a in report.attribution
    ]


def agency_rows(attribution: AttributionReport) -> list[list[object]]:
    return [
        [agency.value, c.tp, c.fp, c.fn, f"{c.micro_f1:.3f}"] for agency, c in attribution.per_agency.items()
    ]


def error_text(errors: dict[str, Counter[str]]) -> str:
    """``true → taken for ×n, …; …``, or ``none``."""
    return (
        "; ".join(
            f"{true} → " + ", ".join(f"{pred} ×{count}" for pred, count in taken.most_common())
            for true, taken in errors.items()
        )
        or "none"
    )


def print_suite(report: SuiteReport, console: Console) -> None:
    from pipeline.tables import print_table

    console.print(f"model {report.model_version} ({report.backend})", markup=False, highlight=False)
    print_table(console, SENTIMENT_HEADERS, sentiment_rows(report), title="sentiment, per domain")
    print_table(console, ATTRIBUTION_HEADERS, attribution_rows(report), title="enrichment of in-domain posts")
    for suite_set, attribution in report.attribution:
        print_table(console, AGENCY_HEADERS, agency_rows(attribution), title=f"{suite_set.name}: per agency")
        for what, errors in (
            ("category", attribution.category_errors),
            ("region", attribution.region_errors),
        ):
            console.print(
                f"{suite_set.name}: {what} errors (true → taken for): {error_text(errors)}", markup=False
            )
    for suite_set in report.missing:
        console.print(f"not scored: {suite_set.name} ({_where(suite_set.path)} is not there)", markup=False)


def markdown_suite(report: SuiteReport) -> str:
    """The tables as Markdown, for the model card."""

    def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
        lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
        return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]

    out = [f"model `{report.model_version}` ({report.backend})", ""]
    out += [*table(SENTIMENT_HEADERS, sentiment_rows(report)), ""]
    out += [*table(ATTRIBUTION_HEADERS, attribution_rows(report)), ""]
    for suite_set, attribution in report.attribution:
        out += [f"{suite_set.name}, per agency:", ""]
        out += [*table(AGENCY_HEADERS, agency_rows(attribution)), ""]
        for what, errors in (
            ("category", attribution.category_errors),
            ("region", attribution.region_errors),
        ):
            out += [f"{suite_set.name}, {what} errors (true → taken for): {error_text(errors)}", ""]
    out += [f"not scored: {s.name} (`{_where(s.path)}` is not there)" for s in report.missing]
    return "\n".join(out).rstrip() + "\n"
