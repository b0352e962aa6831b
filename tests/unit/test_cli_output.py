"""Output for scripts: aligned text tables, nothing cut, no escape codes when piped."""

from __future__ import annotations

from pipeline.cli.output import aligned, make_console


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
