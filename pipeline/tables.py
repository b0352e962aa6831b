"""Tables as plain text: what scripts, logs and narrow terminals read without boxes or cut labels."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


def aligned(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A table as text: columns separated by two spaces, numbers right-aligned, nothing cut."""
    cells = [[str(h) for h in headers], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            value.rjust(widths[i]) if numeric[i] else value.ljust(widths[i]) for i, value in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    if text == "":
        return True
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def print_table(
    console: Console, headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None
) -> None:
    """A rich table on a terminal (cells folded, never cut short), aligned text otherwise."""
    if not console.is_terminal:
        if title:
            console.print(title, soft_wrap=True, markup=False)
        console.print(aligned(headers, rows), soft_wrap=True, markup=False, highlight=False)
        return
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
