"""Analysts' corrections of predicted labels: the CSV they edit and the labelled file training reads.

``pantau label export`` writes indexed posts with what the model predicted and empty ``correct_*`` columns;
``pantau label import`` validates each edited row and keeps the corrections, with who made them, when and
which model was wrong, in a JSONL file that the training loader reads like any labelled file (``text``,
``sentiment``, ``category``). One record per post key: a later correction of a post replaces the earlier one.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.atomic_files import write_lines
from pipeline.settings import REPO_ROOT
from schemas.vocab import Agency, Category

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

CORRECTIONS_FILE = REPO_ROOT / "data" / "corrections" / "corrections.jsonl"
"""Where ``pantau label import`` keeps corrections by default, next to the other labelled data."""

Sentiment = Literal["negative", "neutral", "positive"]
NO_AGENCY = "none"
"""Written in ``correct_agencies`` to say "about no agency" (an empty cell means "no correction")."""

PREDICTED = ("sentiment", "sentiment_score", "category", "agencies", "mentions", "official_account")
CORRECTABLE = ("correct_sentiment", "correct_category", "correct_agencies")
COLUMNS = ("key", "created_at", "platform", "model_version", "text", *PREDICTED, *CORRECTABLE, "note")
"""Columns of the exported CSV, in order; lists are written ``samsat;dukcapil``."""


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is a formula to a spreadsheet program: a post reading
``=HYPERLINK("http://…")`` would run in the analyst's Excel (CSV injection)."""
ESCAPED_START = (*FORMULA_START, "'")
"""Starts that :func:`spreadsheet_cell` puts an apostrophe before (an apostrophe too, so that the import
can tell its own apostrophe from one that belongs to the text)."""


def spreadsheet_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: a leading apostrophe before an ``ESCAPED_START``."""
    return "'" + value if value.startswith(ESCAPED_START) else value


def from_spreadsheet_cell(value: object) -> object:
    """The inverse of :func:`spreadsheet_cell`: only an apostrophe it could have added goes, so a note an
    analyst starts with "'" keeps it."""
    if isinstance(value, str) and value[:1] == "'" and value[1:2] in ESCAPED_START:
        return value[1:]
    return value


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.replace(",", ";").split(";") if part.strip()]
    return value


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class CorrectionRow(BaseModel):
    """One row of an edited export. The ``correct_*`` cells an analyst left empty keep the prediction."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    key: str = Field(pattern=r"^[a-z_]+:\S+$", description="the post's key, platform:id")
    text: str = Field(min_length=1)
    model_version: str = Field(min_length=1, description="the model whose prediction is corrected")
    sentiment: Sentiment
    category: Category
    agencies: list[Agency] = []
    correct_sentiment: Sentiment | None = None
    correct_category: Category | None = None
    correct_agencies: list[Agency] | None = None
    note: str | None = None

    _blank = field_validator("correct_category", "note", mode="before")(_blank_is_none)
    _cells = field_validator("*", mode="before")(from_spreadsheet_cell)

    @field_validator("sentiment", "correct_sentiment", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return _blank_is_none(value.strip().lower()) if isinstance(value, str) else value

    @field_validator("agencies", mode="before")
    @classmethod
    def _agencies(cls, value: object) -> object:
        return _split(value)

    @field_validator("correct_agencies", mode="before")
    @classmethod
    def _correct_agencies(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and value.strip().lower() == NO_AGENCY:
            return []
        return _split(value)

    @property
    def corrects_anything(self) -> bool:
        return any(getattr(self, name) is not None for name in CORRECTABLE)


class Predicted(BaseModel):
    sentiment: Sentiment
    category: Category
    agencies: list[Agency]


class Correction(BaseModel):
    """A corrected post as training reads it: the labels, then where they came from."""

    model_config = ConfigDict(extra="forbid")

    key: str
    text: str
    sentiment: Sentiment
    category: Category
    agencies: list[Agency]
    corrected: list[str] = Field(description="which labels the analyst changed; the others were confirmed")
    predicted: Predicted
    model_version: str
    by: str
    at: AwareDatetime
    note: str | None = None

    @classmethod
    def from_row(cls, row: CorrectionRow, by: str, at: datetime) -> Correction:
        predicted = Predicted(sentiment=row.sentiment, category=row.category, agencies=row.agencies)
        final = Predicted(
            sentiment=row.correct_sentiment or row.sentiment,
            category=row.correct_category or row.category,
            agencies=row.agencies if row.correct_agencies is None else row.correct_agencies,
        )
        changed = [
            name
            for name in ("sentiment", "category", "agencies")
            if getattr(final, name) != getattr(predicted, name)
        ]
        return cls(
            key=row.key,
            text=row.text,
            **final.model_dump(),
            corrected=changed,
            predicted=predicted,
            model_version=row.model_version,
            by=by,
            at=at,
            note=row.note,
        )


# ---- export --------------------------------------------------------------------------------------


def export_query(since: timedelta, agency: str | None, now: datetime | None = None) -> dict[str, Any]:
    """Posts created in the last ``since`` (optionally about one agency), official accounts' posts left out:
    their labels are fixed by rule, there is nothing to correct."""
    start = (now or datetime.now(UTC)) - since
    filters: list[dict[str, Any]] = [{"range": {"@timestamp": {"gte": start.isoformat()}}}]
    if agency:
        filters.append({"term": {"agencies": agency}})
    return {"bool": {"filter": filters, "must_not": [{"exists": {"field": "official_account"}}]}}


def export_row(key: str, doc: dict[str, Any]) -> dict[str, str]:
    """One CSV row of an indexed post document."""
    sentiment = doc.get("sentiment") or {}
    label = str(sentiment.get("label", ""))
    score = sentiment.get(label)
    return {
        "key": key,
        "created_at": str(doc.get("@timestamp", "")),
        "platform": str(doc.get("platform", "")),
        "model_version": str(doc.get("model_version", "")),
        "text": str(doc.get("text", "")),
        "sentiment": label,
        "sentiment_score": f"{score:.3f}" if isinstance(score, int | float) else "",
        "category": str(doc.get("category", "")),
        "agencies": ";".join(doc.get("agencies") or []),
        "mentions": ";".join(doc.get("mentions") or []),
        "official_account": str(doc.get("official_account") or ""),
        "correct_sentiment": "",
        "correct_category": "",
        "correct_agencies": "",
        "note": "",
    }


def fetch_for_labelling(
    es: Elasticsearch, index: str, since: timedelta, agency: str | None, limit: int
) -> list[dict[str, str]]:
    """The newest ``limit`` posts of the window as export rows, newest first."""
    hits = es.search(
        index=index,
        query=export_query(since, agency),
        sort=[{"@timestamp": "desc"}],
        size=limit,
        track_total_hits=False,
    )["hits"]["hits"]
    return [export_row(hit["_id"], hit["_source"]) for hit in hits]


def write_export(rows: Iterable[dict[str, str]], out: Path) -> int:
    """The CSV analysts edit (UTF-8 with a byte-order mark, so that spreadsheet programs read it as UTF-8;
    every cell as :func:`spreadsheet_cell` makes it, since post text is written by anyone)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({name: spreadsheet_cell(cell) for name, cell in row.items()})
            count += 1
    return count


# ---- import --------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    corrections: list[Correction] = field(default_factory=list)
    unchanged: int = 0
    """Rows with every ``correct_*`` cell empty: not reviewed, not kept."""
    bad: list[tuple[int, str]] = field(default_factory=list)
    """(line, why) of rows that failed validation."""


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'row'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )


def read_corrections_csv(path: Path, by: str, at: datetime | None = None) -> ImportReport:
    """Validate every row of an edited export; good rows become corrections, bad ones are reported by line.

    A file that is not a CSV of the export's columns is an error of the whole file (``ValueError``)."""
    at = at or datetime.now(UTC)
    report = ImportReport()
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    reader = csv.DictReader(io.StringIO(content, newline=""))
    missing = [
        c
        for c in ("key", "text", "model_version", "sentiment", "category")
        if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise ValueError(
            f"{path}:1: not an export of `pantau label export` (missing columns: {', '.join(missing)})"
        )
    rows: Iterator[dict[str, str | None]] = iter(reader)
    while True:
        try:
            raw = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            report.bad.append((reader.line_num, f"not valid CSV ({exc})"))
            break
        line = reader.line_num
        if None in raw:  # more cells than columns: a stray delimiter in an unquoted cell
            report.bad.append((line, "more cells than the header has columns (quote cells that hold commas)"))
            continue
        try:
            row = CorrectionRow.model_validate(raw)
        except ValidationError as exc:
            report.bad.append((line, _problems(exc)))
            continue
        if not row.corrects_anything:
            report.unchanged += 1
            continue
        report.corrections.append(Correction.from_row(row, by=by, at=at))
    return report


def read_corrections(path: Path) -> dict[str, Correction]:
    """The kept corrections by post key (none while the file does not exist); errors name ``path:line``."""
    kept: dict[str, Correction] = {}
    if not path.exists():
        return kept
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = Correction.model_validate_json(line)
            except ValidationError as exc:
                raise ValueError(f"{path}:{lineno}: {_problems(exc)}") from None
            kept[record.key] = record
    return kept


def merge_corrections(path: Path, new: Iterable[Correction]) -> tuple[int, int]:
    """Add ``new`` to the file, a later correction of a key replacing the earlier; (added, replaced).

    Written to a temporary file and renamed, so an interrupted import leaves the old file whole."""
    kept = read_corrections(path)
    added = replaced = 0
    for record in new:
        if record.key in kept:
            replaced += 1
            del kept[record.key]  # re-inserted last: the file stays in the order corrections were made
        else:
            added += 1
        kept[record.key] = record
    write_lines(path, (record.model_dump_json(exclude_none=True) for record in kept.values()))
    return added, replaced


def default_author() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
