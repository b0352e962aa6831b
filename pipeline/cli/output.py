"""Output that scripts can read: no colour, no wrapping and no boxes when stdout is not a terminal.

On a terminal, rich draws as usual. Piped or redirected, a line stays one line however long (an error
message split at 80 columns breaks ``grep``), tables are columns of text separated by two spaces, and no
escape codes are written.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from pipeline.tables import aligned

PIPED_WIDTH = 10_000
"""What rich lays out to when nothing is a terminal: wide enough that nothing wraps or is cut."""


def make_console(stderr: bool = False) -> Console:
    if Console(stderr=stderr).is_terminal:
        return Console(stderr=stderr)
    return Console(
        stderr=stderr, soft_wrap=True, width=PIPED_WIDTH, no_color=True, highlight=False, emoji=False
    )


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
