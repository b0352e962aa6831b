"""Counted nouns in messages people read: ``1 post``, ``2 posts``."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
