"""Output that scripts can read: no colour, no wrapping and no boxes when stdout is not a terminal.

On a terminal, rich draws as usual. Piped or redirected, a line stays one line however long (an error
message split at 80 columns breaks ``grep``), tables are columns of text separated by two spaces, and no
escape codes are written.
"""

from __future__ import annotations

from rich.console import Console

from pipeline.tables import print_table

__all__ = ["make_console", "print_table"]

PIPED_WIDTH = 10_000
"""What rich lays out to when nothing is a terminal: wide enough that nothing wraps or is cut."""


def make_console(stderr: bool = False) -> Console:
    if Console(stderr=stderr).is_terminal:
        return Console(stderr=stderr)
    return Console(
        stderr=stderr, soft_wrap=True, width=PIPED_WIDTH, no_color=True, highlight=False, emoji=False
    )
