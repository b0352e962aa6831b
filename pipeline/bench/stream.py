"""The labelled multi-story stream of ``pantau bench topics``: nine stories in three registers in chatter.

Indonesian, Sundanese and Javanese-Serang phrasings (``data/stream.yaml``) over one-off chatter in the same
registers (``data/chatter.yaml`` for Indonesian), so that a topic held together by a dialect, or by words
several stories share ("jalan raya", "hujan"), shows as impure. The stream's parameters are written in the
YAML, before any tuning. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter

from pipeline.bench import synthetic
from schemas.topics import TopicPost
from schemas.vocab import Agency, Category, Region

Register = Literal["id", "su", "jv"]
TUNING_SEEDS = (0, 1)
REPORTED_SEEDS = (2, 3, 4)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Decorations(_Strict):
    openers: tuple[str, ...]
    closers: tuple[str, ...]


class StreamStory(synthetic.Story):
    language: Literal["id", "su", "jv", "mixed"]


class StreamFile(_Strict):
    chatter_per_dialect: int
    update_every: int
    registers: dict[Literal["su", "jv"], Decorations]
    stories: tuple[StreamStory, ...]
    dialect_chatter: dict[Literal["su", "jv"], tuple[str, ...]]


SPEC: StreamFile = TypeAdapter(StreamFile).validate_python(
    yaml.safe_load(files("pipeline.bench").joinpath("data", "stream.yaml").read_text(encoding="utf-8"))
)


def _decorate(core: str, register: Register, rng: random.Random) -> str:
    if register == "id":
        return synthetic._decorate(core, rng)
    deco = SPEC.registers[register]
    text = rng.choice(deco.openers) + core + rng.choice(deco.closers)
    if rng.random() < 0.25:
        text = synthetic._typo(text, rng)
    if rng.random() < 0.15:
        text = text.capitalize()
    return text


def _register(story: StreamStory, rng: random.Random) -> Register:
    if story.language == "mixed":
        return rng.choice(("id", "su", "jv"))
    return story.language


def labelled_stream(
    seed: int, start: datetime | None = None
) -> tuple[list[TopicPost], dict[str, str | None]]:
    """Posts sorted by time, and each key's story (``None`` for chatter). Chatter keys say their register
    (``x:chat-<n>``, ``x:su-<n>``, ``x:jv-<n>``)."""
    rng = random.Random(seed)
    start = start or datetime(2025, 1, 15, tzinfo=UTC)
    posts: list[TopicPost] = []
    story_of: dict[str, str | None] = {}
    seen: set[str] = set()

    def unique(make: object) -> str:
        assert callable(make)
        text = str(make())
        for _ in range(50):
            if text not in seen:
                break
            text = str(make())
        seen.add(text)
        return text

    for story in SPEC.stories:
        phrases = list(story.phrases)
        rng.shuffle(phrases)
        for n in range(story.size):
            core = phrases[n] if n < len(phrases) else rng.choice(phrases)
            text = unique(lambda c=core, s=story: _decorate(c, _register(s, rng), rng))
            key = f"x:{story.name}-{n}"
            hour = min(max(rng.gauss(story.peak_hour, story.spread_hours), 0.0), 23.99)
            posts.append(
                TopicPost(
                    key=key,
                    created_at=start + timedelta(hours=hour),
                    text=text,
                    agencies=list(story.agencies),
                    region=story.region,
                    sentiment=rng.choice(synthetic._SENTIMENTS),
                    category=story.category,
                )
            )
            story_of[key] = story.name
    for post in synthetic.synthetic_day(seed, start):  # its Indonesian chatter, not its stories
        if synthetic.story_of(post.key) is None:
            posts.append(post)
            story_of[post.key] = None
    places = list(synthetic._PLACES)
    for register, templates in SPEC.dialect_chatter.items():
        order = rng.sample(templates, len(templates))
        for n in range(SPEC.chatter_per_dialect):
            template = order[n % len(order)]
            place = rng.choice(places)
            text = unique(lambda t=template, p=place, r=register: _decorate(t.format(p=p), r, rng))
            key = f"x:{register}-{n}"
            posts.append(
                TopicPost(
                    key=key,
                    created_at=start + timedelta(seconds=rng.uniform(0, 86_399)),
                    text=text,
                    agencies=[Agency.PEMDA],
                    region=synthetic._PLACES[place],
                    sentiment=rng.choice(synthetic._SENTIMENTS),
                    category=Category.LAYANAN_UMUM,
                )
            )
            story_of[key] = None
    posts.sort(key=lambda p: (p.created_at, p.key))
    return posts, story_of


def register_of(key: str) -> str:
    """Chatter's register from its key (``id`` for the Indonesian chatter), or ``story``."""
    name = key.removeprefix("x:").rsplit("-", 1)[0]
    return {"chat": "id", "su": "su", "jv": "jv"}.get(name, "story")


__all__ = ["REPORTED_SEEDS", "SPEC", "TUNING_SEEDS", "Region", "labelled_stream", "register_of"]
