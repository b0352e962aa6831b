"""Read raw posts from JSONL or CSV files, line by line, keeping line numbers for error reports."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pipeline.validation import parse_json


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
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
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
    """CSV columns map to fields; dotted headers (``author.handle``, ``metrics.likes``) nest."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        for row in reader:
            number = reader.line_num
            surplus = row.pop(None, None)
            if surplus:
                yield FileRecord(line=number, error=f"{len(surplus)} more values than header columns")
                continue
            undecodable = [
                f"not UTF-8: byte 0x{bad[0]:02x} in column {name!r}"
                for name, value in row.items()
                if isinstance(value, str) and (bad := _undecodable(value))
            ]
            if undecodable:
                yield FileRecord(line=number, error=undecodable[0])
                continue
            data: dict[str, Any] = {}
            for key, value in row.items():
                if value is None or value == "":
                    continue
                head, _, rest = key.partition(".")
                if rest:
                    data.setdefault(head, {})[rest] = value
                else:
                    data[key] = value
            yield FileRecord(line=number, data=data)
