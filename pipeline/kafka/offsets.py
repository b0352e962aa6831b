"""Offset arithmetic for commits that never pass an unacknowledged offset (``kafka/transport.py``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Jump", "commit_run", "jump"]


def commit_run(acked: list[int], committed: int | None, held: int | None = None, slack: int = 0) -> list[int]:
    """The acknowledged offsets a commit may pass now: the unbroken run that starts at ``committed`` (the
    next offset to read; up to ``slack`` past it, for a compacted topic whose commit may sit on a hole), or
    at the lowest acknowledged one before the first commit, and stops below ``held``, the lowest offset
    still delivered and unacknowledged (an agent may hold one while later ones are done). ``acked`` is
    sorted."""
    if not acked or (committed is not None and acked[0] > committed + slack):
        return []
    run: list[int] = []
    for offset in acked:
        if (run and offset != run[-1] + 1) or (held is not None and offset >= held):
            break
        run.append(offset)
    return run


@dataclass(frozen=True)
class Jump:
    """What a jump in fetched offsets means: ``gone`` the offsets retention removed (nothing to read),
    ``skipped`` the first offset the log still holds that was passed over (None when none was)."""

    gone: range
    skipped: int | None


def jump(committed: int | None, offset_from: int, offset_to: int, earliest: int | None) -> Jump:
    """The fetch loop read ``offset_to`` right after ``offset_from - 1``. Faust seeds that read offset with
    the commit, the next offset to read: when they are equal, the commit itself was not read either.
    ``earliest`` is the log's first offset (None when unknown: then nothing counts as gone)."""
    start = offset_from - 1 if committed == offset_from - 1 else offset_from
    if committed is not None:
        start = max(start, committed)  # below the commit everything was read and acknowledged already
    end_of_gone = min(earliest, offset_to) if earliest is not None else start
    gone = range(start, max(start, end_of_gone))
    first_held = max(start, end_of_gone)
    return Jump(gone, first_held if first_held < offset_to else None)
