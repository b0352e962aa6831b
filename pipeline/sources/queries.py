"""What connectors ask for, built from the gazetteer: Banten-specific aliases as they are, generic phrases
("stnk", "pajak motor") only together with a Banten place (alone they pull in all of Indonesia and spend
the quota), the agencies' own accounts, and hashtags; split to each platform's limits."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.gazetteer.loader import GazetteerData, load_data

X_QUERY_LIMIT = 512
"""Characters of one recent-search query (X API v2, self-serve tiers)."""
INSTAGRAM_HASHTAG_LIMIT = 30
"""Unique hashtags an Instagram business account may search in 7 days."""


class Terms(BaseModel):
    """Every list de-duplicated and in the order found; handles without ``@``, hashtags without ``#``."""

    model_config = ConfigDict(extra="forbid")

    specific: list[str] = []
    """Aliases that name a Banten body or place by themselves ("samsat cikokol", "@bpbdbanten")."""
    generic: list[str] = []
    """Names, short forms, apps and phrases used all over Indonesia: searched only with a place."""
    places: list[str] = []
    handles: list[str] = []
    """Official accounts of Banten agencies: their own posts and replies are collected."""
    hashtags: list[str] = []
    """Banten-specific hashtags."""


class QueriesFile(BaseModel):
    """``PANTAU_QUERIES_FILE``: terms to add (by kind) and terms to remove (from every kind); with
    ``replace: true`` the gazetteer's terms are dropped and only ``add`` is asked for."""

    model_config = ConfigDict(extra="forbid")

    add: Terms = Terms()
    remove: list[str] = []
    replace: bool = False


class QueriesFileError(ValueError):
    pass


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        item = " ".join(item.split())
        if item and item.lower() not in seen:
            seen[item.lower()] = item
    return list(seen.values())


def gazetteer_terms(data: GazetteerData | None = None) -> Terms:
    data = data or load_data()
    specific: list[str] = []
    generic: list[str] = []
    handles: list[str] = []
    hashtags: list[str] = []
    for entry in data.agencies.values():
        for alias in entry.regional:
            if alias.startswith("@"):
                handles.append(alias[1:])
                specific.append(alias)
            elif alias.startswith("#"):
                hashtags.append(alias[1:])
            else:
                specific.append(alias)
        for handle in entry.handles:
            if "banten" in handle.lower():
                (handles if handle.startswith("@") else hashtags).append(handle[1:])
                if handle.startswith("@"):
                    specific.append(handle)
            elif not handle.startswith("#"):
                generic.append(handle)  # a national account (@dukcapil): its mentions, near a place
        # Misspellings are left out: they cost query length and quota for few posts.
        generic += [*entry.names, *entry.abbreviations, *entry.apps, *entry.phrases]
    places: list[str] = []
    for region in data.regions.values():
        places += [name for name in [*region.names, *region.fallback] if " " not in name]
    return Terms(
        specific=_unique(specific),
        generic=_unique(generic),
        places=_unique(places),
        handles=_unique(handles),
        hashtags=_unique(hashtags),
    )


def load_terms(override: Path | None = None, data: GazetteerData | None = None) -> Terms:
    terms = gazetteer_terms(data)
    if override is None:
        return terms
    try:
        raw = yaml.safe_load(override.read_text(encoding="utf-8")) or {}
        changes = QueriesFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise QueriesFileError(f"{override}: cannot read: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise QueriesFileError(f"{override}: {problems}") from None
    if changes.replace:
        terms = Terms()
    removed = {term.lower().lstrip("@#") for term in changes.remove}
    fields = {}
    for name in Terms.model_fields:
        added = [t.lstrip("@#") if name in ("handles", "hashtags") else t for t in getattr(changes.add, name)]
        merged = _unique([*getattr(terms, name), *added])
        fields[name] = [t for t in merged if t.lower().lstrip("@#") not in removed]
    return Terms(**fields)


def _x_term(term: str) -> str:
    term = term.replace('"', "")
    return f'"{term}"' if " " in term or "-" in term else term


def _pack(items: list[str], template: str, limit: int) -> list[str]:
    """Groups ``(a OR b OR …)`` put into ``template`` at ``{}``, as many per query as fit ``limit``."""
    queries: list[str] = []
    group: list[str] = []
    for item in items:
        candidate = template.format("(" + " OR ".join([*group, item]) + ")")
        if len(candidate) <= limit or not group:
            if len(candidate) > limit:
                continue  # one term too long for any query: left out
            group.append(item)
        else:
            queries.append(template.format("(" + " OR ".join(group) + ")"))
            group = [item]
    if group:
        queries.append(template.format("(" + " OR ".join(group) + ")"))
    return queries


def x_queries(terms: Terms, limit: int = X_QUERY_LIMIT) -> list[str]:
    """Recent-search queries, each at most ``limit`` characters: specific terms and hashtags; generic terms
    with a place group; ``from:`` the official accounts (their replies are the agencies' responses)."""
    places = "(" + " OR ".join(_x_term(p) for p in terms.places) + ")"
    specific = [_x_term(t) for t in terms.specific] + [f"#{h}" for h in terms.hashtags]
    queries = _pack(specific, "{} -is:retweet", limit)
    if terms.places:
        queries += _pack([_x_term(t) for t in terms.generic], "{} " + places + " -is:retweet", limit)
    queries += _pack([f"from:{h}" for h in terms.handles], "{}", limit)
    return queries


def mastodon_tags(terms: Terms) -> list[str]:
    """Tag timelines to read: the Banten hashtags and the place names as tags (the enricher keeps what is
    about an agency). Generic phrases cannot be qualified on a tag timeline, so they are not read."""
    tags = [h.lower() for h in terms.hashtags] + [p.lower() for p in terms.places if p.isalnum()]
    return _unique(tags)


def instagram_hashtags(terms: Terms) -> tuple[list[str], list[str]]:
    """The hashtags searched and those left out by Instagram's 30-per-7-days limit."""
    tags = mastodon_tags(terms)
    return tags[:INSTAGRAM_HASHTAG_LIMIT], tags[INSTAGRAM_HASHTAG_LIMIT:]


def youtube_queries(terms: Terms, places: int = 3) -> list[str]:
    """search.list costs 100 units: a few broad queries (YouTube's ``|`` is OR), each with a place."""
    specific = [t for t in terms.specific if not t.startswith("@")]
    queries = _pack_pipe(specific, 100)
    for place in terms.places[:places]:
        queries.append(f"pelayanan publik {place}")
    return queries


def _pack_pipe(items: list[str], limit: int) -> list[str]:
    queries: list[str] = []
    group: list[str] = []
    for item in items:
        if group and len("|".join([*group, item])) > limit:
            queries.append("|".join(group))
            group = []
        group.append(item)
    if group:
        queries.append("|".join(group))
    return queries
