"""The progress bar of training and of teacher passes: the long bar of ``pipeline.report`` plus the loss
and learning rate of the last step, and a time estimate (epochs take tens of minutes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

__all__ = ["training_progress"]


def training_progress(console: Console) -> Progress:
    """Tasks of this bar need the fields ``loss`` and ``lr`` (0.0 where they mean nothing)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
