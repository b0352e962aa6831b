"""Read raw posts from JSONL or CSV files, line by line, keeping line numbers for error reports."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from pipeline.validation import parse_json

CSV_FIELD_LIMIT = 1 << 24
"""Characters one CSV cell may hold (the csv module's default, 131,072, raised an error mid-file): a post
over the message limit is then rejected with that reason, like one in a JSONL file."""


def csv_dict_reader(fh: IO[str], delimiter: str = ",") -> csv.DictReader[str]:
    """The one way CSV files are read: strict (an unclosed quote is an error, not the rest of the file
    swallowed into one cell) and with cells up to ``CSV_FIELD_LIMIT``."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    return csv.DictReader(fh, delimiter=delimiter, strict=True)


class FileRecord(BaseModel):
    line: int
    data: dict[str, Any] | None = None
    error: str | None = None


def count_records(path: Path) -> int:
    """Cheap total for progress bars (lines for JSONL, rows minus header for CSV)."""
    with open(path, "rb") as fh:
        lines = sum(1 for line in fh if line.strip())
    return max(lines - 1, 0) if _is_csv(path) else lines


def read_records(path: Path) -> Iterator[FileRecord]:
    yield from (_read_csv(path) if _is_csv(path) else _read_jsonl(path))


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() in {".csv", ".tsv"}


def _undecodable(text: str) -> tuple[int, int] | None:
    """The first byte that was not UTF-8 (read with ``surrogateescape``) and its 1-based position."""
    for position, char in enumerate(text, start=1):
        if "\udc80" <= char <= "\udcff":
            return ord(char) - 0xDC00, position
    return None


def _read_jsonl(path: Path) -> Iterator[FileRecord]:
    # Bytes that are not UTF-8 decode to lone surrogates: that line is reported, the rest still read.
    # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the first line.
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if bad := _undecodable(line):
                yield FileRecord(line=number, error=f"not UTF-8: byte 0x{bad[0]:02x} at column {bad[1]}")
                continue
            try:
                data = parse_json(line)
            except ValueError as exc:
                yield FileRecord(line=number, error=str(exc))
                continue
            if not isinstance(data, dict):
                yield FileRecord(line=number, error=f"expected a JSON object, got {type(data).__name__}")
                continue
            yield FileRecord(line=number, data=data)


def _read_csv(path: Path) -> Iterator[FileRecord]:
    """CSV columns map to fields; dotted headers (``author.handle``, ``metrics.likes``) nest. A row the
    csv module cannot parse (an unclosed quote, a NUL byte) is reported with the line it starts on."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv_dict_reader(fh, delimiter)
        try:
            header = reader.fieldnames or []  # read now, so row line numbers start after it
        except csv.Error as exc:
            yield FileRecord(line=1, error=f"not valid CSV: {exc}")
            return
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:  # which column would win is a guess, as with a JSON object's repeated key
            yield FileRecord(line=1, error=f"column {repeated[0]!r} appears twice in the header")
            return
        rows = reader.reader  # its line count moves on a row that fails too (DictReader's does not)
        while True:
            start = rows.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield FileRecord(line=start, error=f"not valid CSV: {exc}")
                if rows.line_num < start:  # nothing consumed: stop rather than loop
                    return
                continue
            # the line it starts on: a quoted value may span lines, and blank lines before it are skipped
            spanned = sum(v.count("\n") for v in row.values() if isinstance(v, str))
            spanned += sum(v.count("\n") for v in row.get(None) or [] if isinstance(v, str))
            yield _csv_record(rows.line_num - spanned, row)


def _csv_record(number: int, row: dict[str | None, Any]) -> FileRecord:
    surplus = row.pop(None, None)
    if surplus:
        return FileRecord(line=number, error=f"{len(surplus)} more values than header columns")
    undecodable = [
        f"not UTF-8: byte 0x{bad[0]:02x} in column {name!r}"
        for name, value in row.items()
        if isinstance(value, str) and (bad := _undecodable(value))
    ]
    if undecodable:
        return FileRecord(line=number, error=undecodable[0])
    data: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or value == "":
            continue
        head, _, rest = key.partition(".")
        if not rest:
            if isinstance(data.get(key), dict):
                return FileRecord(line=number, error=f"column {key!r} clashes with columns {key}.*")
            data[key] = value
        elif isinstance(data.setdefault(head, {}), dict):
            data[head][rest] = value
        else:
            return FileRecord(line=number, error=f"column {key!r} clashes with column {head!r}")
    return FileRecord(line=number, data=data)
