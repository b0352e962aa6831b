"""Output for scripts: aligned text tables, nothing cut, no escape codes when piped."""

from __future__ import annotations

from pipeline.cli.output import make_console
from pipeline.tables import aligned


def test_tables_are_aligned_columns_with_numbers_right_aligned_and_nothing_cut() -> None:
    text = aligned(["label", "n"], [["administrasi_kependudukan", 3], ["kesehatan", 120]])
    assert text.splitlines() == [
        "label                        n",
        "administrasi_kependudukan    3",
        "kesehatan                  120",
    ]


def test_a_console_that_is_not_a_terminal_neither_wraps_nor_colours(capsys: object) -> None:
    console = make_console()
    assert not console.is_terminal  # pytest captures stdout
    line = "error: " + "word " * 60
    console.print(f"[red]{line}[/red]")
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out == line + "\n"


def test_the_confusion_matrix_keeps_whole_labels_on_a_narrow_terminal() -> None:
    import io

    import numpy as np
    from rich.console import Console

    from pipeline.model.category import CATEGORIES
    from pipeline.model.evaluate import print_report, report_from_proba

    truth = [CATEGORIES[i % len(CATEGORIES)] for i in range(3 * len(CATEGORIES))]
    proba = np.eye(len(CATEGORIES))[[CATEGORIES.index(c) for c in truth]]
    out = io.StringIO()
    print_report(
        report_from_proba(proba, truth, CATEGORIES), Console(file=out, width=60, force_terminal=True)
    )
    matrix = out.getvalue().split("confusion (rows: true, columns: predicted)")[1]
    header = matrix.strip().splitlines()[0].split()
    assert header == list(CATEGORIES)  # nothing cut to "a…"
    assert "…" not in matrix
