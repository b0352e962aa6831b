"""A synthetic day of Banten posts with three planted stories, for topic tests and benchmarks.

Real traffic cannot be shipped, so the stories are hand-written phrasings (slang, typos, hashtags) over
a background of one-off complaints about many services and places: the discovery stage must find the
stories and nothing big in the chatter. The phrasings are data (``data/stories.yaml``,
``data/chatter.yaml``); this module only draws from them. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.resources import files
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter

from schemas.topics import TopicPost
from schemas.vocab import Agency, Category, Region, SentimentLabel

S = SentimentLabel


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Story(_Strict):
    name: str
    size: int
    peak_hour: float
    spread_hours: float
    phrases: tuple[str, ...]
    agencies: tuple[Agency, ...]
    region: Region
    category: Category


class StoriesFile(_Strict):
    stories: tuple[Story, ...]


class Theme(_Strict):
    """One background theme; ``{p}`` in a template is a place."""

    category: Category
    agency: Agency
    templates: tuple[str, ...]


class ChatterFile(_Strict):
    openers: tuple[str, ...]
    closers: tuple[str, ...]
    themes: tuple[Theme, ...]
    places: dict[str, Region]
    """Place name → the kabupaten/kota it belongs to, in the file's order (the draws depend on it)."""


M = TypeVar("M")


def _load(name: str, model: type[M]) -> M:
    text = files("pipeline.bench").joinpath("data", name).read_text(encoding="utf-8")
    return TypeAdapter(model).validate_python(yaml.safe_load(text))


STORIES: tuple[Story, ...] = _load("stories.yaml", StoriesFile).stories
_BACKGROUND = _load("chatter.yaml", ChatterFile)
_OPENERS, _CLOSERS = _BACKGROUND.openers, _BACKGROUND.closers
_CHATTER: tuple[Theme, ...] = _BACKGROUND.themes
_PLACES: dict[str, Region] = _BACKGROUND.places

_SENTIMENTS = (S.NEGATIVE,) * 7 + (S.NEUTRAL,) * 2 + (S.POSITIVE,)


def _typo(text: str, rng: random.Random) -> str:
    """Drop or double one letter, as thumbs do."""
    idx = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(idx) < 8:
        return text
    i = rng.choice(idx[3:])
    return text[:i] + text[i + 1 :] if rng.random() < 0.5 else text[:i] + text[i] + text[i:]


def _decorate(core: str, rng: random.Random) -> str:
    text = rng.choice(_OPENERS) + core + rng.choice(_CLOSERS)
    if rng.random() < 0.25:
        text = _typo(text, rng)
    if rng.random() < 0.15:
        text = text.capitalize()
    return text


def _chatter_text(template: str, place: str, rng: random.Random) -> str:
    return _decorate(template.format(p=place), rng)


def _story_time(story: Story, start: datetime, rng: random.Random) -> datetime:
    hour = min(max(rng.gauss(story.peak_hour, story.spread_hours), 0.0), 23.99)
    return start + timedelta(hours=hour)


def synthetic_day(seed: int = 0, start: datetime | None = None, *, chatter: int = 300) -> list[TopicPost]:
    """Story posts (keys ``x:<story>-<n>``) and chatter (``x:chat-<n>``), sorted by time."""
    rng = random.Random(seed)
    start = start or datetime(2025, 1, 15, tzinfo=UTC)
    posts: list[TopicPost] = []
    seen: set[str] = set()

    def unique(make: Callable[[], str]) -> str:
        """Redraw decorations until the text is new (retweets are not what this day is about)."""
        text = make()
        for _ in range(50):
            if text not in seen:
                break
            text = make()
        seen.add(text)
        return text

    for story in STORIES:
        phrases = list(story.phrases)
        rng.shuffle(phrases)
        for n in range(story.size):
            # every phrasing at least once, then repeats with other decorations
            core = phrases[n] if n < len(phrases) else rng.choice(phrases)
            text = unique(partial(_decorate, core, rng))
            posts.append(
                TopicPost(
                    key=f"x:{story.name}-{n}",
                    created_at=_story_time(story, start, rng),
                    text=text,
                    agencies=list(story.agencies),
                    region=story.region,
                    sentiment=rng.choice(_SENTIMENTS),
                    category=story.category,
                )
            )
    places = list(_PLACES)
    # theme and phrasing walk round-robin (phrasing shuffled per theme), places at random
    phrasings = [rng.sample(theme.templates, len(theme.templates)) for theme in _CHATTER]
    for n in range(chatter):
        index = n % len(_CHATTER)
        category, agency = _CHATTER[index].category, _CHATTER[index].agency
        template = phrasings[index][(n // len(_CHATTER)) % len(phrasings[index])]
        place = rng.choice(places)
        text = unique(partial(_chatter_text, template, place, rng))
        posts.append(
            TopicPost(
                key=f"x:chat-{n}",
                created_at=start + timedelta(seconds=rng.uniform(0, 86_399)),
                text=text,
                agencies=[agency],
                region=_PLACES[place],
                sentiment=rng.choice(_SENTIMENTS),
                category=category,
            )
        )
    posts.sort(key=lambda p: (p.created_at, p.key))
    return posts


def story_of(key: str) -> str | None:
    """The planted story a synthetic key belongs to, ``None`` for chatter."""
    name = key.removeprefix("x:").rsplit("-", 1)[0]
    return name if name in {s.name for s in STORIES} else None
