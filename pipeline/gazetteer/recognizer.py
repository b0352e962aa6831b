"""Which Banten agencies a post talks about, and where.

Two token tries run over each post: agency aliases and place names (Banten and, to reject look-alikes
such as "samsat bandung", places outside Banten). Region evidence is ranked; the strongest level wins
and, within a level, the first mention:

4. a kecamatan, kelurahan, landmark or explicit kab/kota name ("Balaraja", "BSD", "kota tangerang")
3. an agency alias tied to a kab/kota ("RSUD Balaraja", "Tirta Benteng", "@dukcapil_kotatangerang")
2. a bare city name shared with the regency around it ("tangerang" → Kota, "serang" → Kota)
1. the province ("banten", "@pemprovbanten")
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.gazetteer.loader import (
    DATA_DIR,
    OUTSIDE_FILE,
    REGIONS_FILE,
    GazetteerData,
    GazetteerError,
    load_data,
    place_variants,
)
from pipeline.text.matcher import Match, PhraseMatcher, tokenize
from schemas.vocab import REGION_NAMES, Agency, Region

LEVEL_PLACE = 4
LEVEL_AGENCY = 3
LEVEL_FALLBACK = 2
LEVEL_PROVINCE = 1

NEAR_TOKENS = 3
"""An outside place at most this many tokens away from an agency alias claims that mention."""
NEAR_COMPANION = 8
"""How far (tokens, either side) an ambiguous alias looks for one of its companion words."""

# Words that turn a weak place name into a place: "kecamatan kemiri", "desa sumur".
PLACE_MARKERS = frozenset({"kecamatan", "kelurahan", "desa", "kampung", "kp", "dusun", "perumahan", "perum"})
# "di" ("at", in Indonesian and Sundanese) before a weak kecamatan or landmark name makes it a place too
# ("pabrik di Kopo", "komplek gw di Setu"); not before a village name, many of which are words ("di teras").
LOCATIVE = "di"
# A place name right after these names a road ("Jl. Raya Serang-Pandeglang", "Jl. Sultan Ageng Tirtayasa"),
# which may run far from where the post is.
ROAD_WORDS = frozenset({"jalan", "jl", "jln", "raya", "ageng", "sultan", "tol"})
# A comparison a few tokens before an agency's name makes it a figure of speech more often than a report
# ("hubungan kita kayak air PDAM", "rindu gw kaya antrian di samsat"). Indonesian, slang spellings,
# Sundanese (siga, jiga) and Javanese/Sundanese krama (kados). Not "bak": also a tub or a rubbish bin.
LIKENING_WORDS = frozenset(
    {
        "kayak",
        "kaya",
        "kek",
        "kyk",
        "kyak",
        "kayag",
        "seperti",
        "spt",
        "sperti",
        "bagai",
        "bagaikan",
        "ibarat",
        "layaknya",
        "laksana",
        "mirip",
        "siga",
        "jiga",
        "kados",
    }
)
LIKENING_REACH = 4
"""How many tokens before an agency alias a comparison word may stand."""
NOT_A_LIKENING = frozenset(
    {"gini", "begini", "gitu", "begitu", "ini", "itu", "biasa", "biasanya", "apa", "dulu"}
)
"""After a comparison word these point at the post's own case ("kayak gini pelayanan samsat?")."""


RICH_BEFORE = frozenset({"orang", "org", "yang", "yg", "paling", "lebih", "makin", "semakin", "jadi"})
"""Before "kaya" these make it "rich" ("orang kaya bayar pajak di samsat"), not "like"."""


def _likened(toks: Sequence[str], start: int) -> bool:
    for at in range(max(0, start - LIKENING_REACH), start):
        word = toks[at]
        if word not in LIKENING_WORDS or toks[at + 1] in NOT_A_LIKENING:
            continue
        if word == "kaya" and at > 0 and toks[at - 1] in RICH_BEFORE:
            continue
        return True
    return False


_PKL_TIME = re.compile(r"\bpkl\.?\s*(?=\d)", re.IGNORECASE)  # "pkl 10.00" is pukul, not street vendors


class Recognition(BaseModel):
    model_config = ConfigDict(frozen=True)

    agencies: list[Agency] = []
    """Agencies named as the Banten service: not an office elsewhere ("samsat bandung")."""
    mentions: list[Agency] = []
    """Every agency named, offices outside Banten included."""
    addressed: list[Agency] = []
    """Banten agencies tagged by one of their @accounts: the post speaks to them, whatever it is about."""
    region: Region | None = None
    places: list[str] = []
    """Banten places named in the post, as display names, in order of first mention."""
    outside_banten: bool = False
    """The post names a place outside Banten and no Banten place."""
    likened: list[Agency] = []
    """Agencies named only right after a comparison word ("kayak air PDAM"): evidence for the attribution
    head, which learns how much a likening counts; the agency stays in ``agencies`` and ``mentions``."""

    @property
    def elsewhere(self) -> list[Agency] | None:
        """For attribution: the offices named only as another province's ("samsat bekasi"), or None when
        the post is about a place outside Banten and names nothing in it."""
        if self.outside_banten:
            return None
        return [agency for agency in self.mentions if agency not in self.agencies]


@dataclass(frozen=True, slots=True)
class AgencyAlias:
    agency: Agency
    region: Region | None = None
    companions: frozenset[str] = frozenset()
    """For an alias that also means something else: one of these tokens must be within ``NEAR_COMPANION``."""


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    regions: tuple[Region, ...]
    """One region, or several for a name shared by kab/kota (ambiguous); empty outside Banten."""
    level: int = LEVEL_PLACE
    weak: bool = False
    hints: tuple[Region, ...] = ()
    """For a bare city name, every kab/kota whose name contains it ("tangerang" → 3671, 3603, 3674)."""
    shared: bool = False
    """Also the name of a place just outside Banten ("Kelapa Dua": Depok, Jakarta)."""
    kept_before: tuple[str, ...] = ()
    """For a shared name, the outside places that may follow it without making it theirs ("soekarno hatta
    jakarta" is the airport; "soekarno hatta bandung" a street in Bandung)."""
    village: bool = False
    """Only a desa or kelurahan name (``villages.yaml``), not a kecamatan or landmark."""

    @property
    def outside(self) -> bool:
        return not self.regions


def _gap(a: Match[Any], b: Match[Any]) -> int:
    """Tokens strictly between two spans, with a tie-break that prefers the span after ``a``."""
    if b.start >= a.end:
        return (b.start - a.end) * 2
    return (a.start - b.end) * 2 + 1


class Gazetteer:
    def __init__(
        self,
        agencies: PhraseMatcher[AgencyAlias],
        places: PhraseMatcher[Place],
    ) -> None:
        self._agencies = agencies
        self._places = places

    @classmethod
    def load(cls, path: Traversable | None = None) -> Gazetteer:
        """Build from the YAML files in ``path`` (default: the packaged data directory)."""
        data = load_data(path)
        directory = path or DATA_DIR
        return cls(_agency_matcher(data, directory), _place_matcher(data, directory))

    def join_places(self, tokens: Sequence[str]) -> list[str]:
        """``tokens`` with each multi-word place name run together ("pasar kemis" → "pasarkemis", a
        spelling the matcher also accepts), so that a place counts as one word, whatever its length."""
        out: list[str] = []
        at = 0
        for hit in self._places.find(tokens):
            if hit.end - hit.start > 1:
                out.extend(tokens[at : hit.start])
                out.append("".join(tokens[hit.start : hit.end]))
                at = hit.end
        out.extend(tokens[at:])
        return out

    def recognize(self, text: str) -> Recognition:
        toks = tokenize(_PKL_TIME.sub("pukul ", text))
        if not toks:
            return Recognition()
        agency_hits = self._agencies.find(toks)
        place_hits = self._places.find(toks)

        outside = [p for p in place_hits if p.value.outside]
        # A name Banten shares with other places (listed as shared or weak), right before an outside
        # place, is that other place ("Kelapa Dua, Depok", "Pasar Anyar Bogor", "kopo bandung");
        # "Rangkasbitung - Tanah Abang" is a route.
        place_hits = [
            p
            for p in place_hits
            if not (p.value.shared or p.value.weak)
            or not any(
                0 <= o.start - p.end <= NEAR_TOKENS and o.value.name not in p.value.kept_before
                for o in outside
            )
        ]

        # Kab/kota that the post points at without doubt; they settle ambiguous and weak names. A bare
        # "tangerang" only hints at its three kab/kota: enough to settle "Curug", not to make "kresek" a
        # place.
        sure: set[Region] = set()
        hinted: set[Region] = set()
        for p in place_hits:
            if len(p.value.regions) == 1 and not p.value.weak and p.value.level >= LEVEL_FALLBACK:
                (hinted if p.value.hints else sure).add(p.value.regions[0])
                hinted.update(p.value.hints)
        for a in agency_hits:
            if a.value.region is not None and a.value.region != Region.PROVINCE:
                sure.add(a.value.region)

        # (hit, region it resolved to or None while still ambiguous, rank within its level: 2 for a name,
        # 1 for a weak name something else confirmed, 0 for a road named after places ("Jl. Raya
        # Serang-Pandeglang"), which may run far from where the post is)
        banten: list[tuple[Match[Place], Region | None, int]] = []
        road_end = -1  # where the last road name ended: "serang-pandeglang" is one road
        for p in place_hits:
            place = p.value
            road = p.start > 0 and (
                toks[p.start - 1] in ROAD_WORDS
                or (p.start == road_end and toks[p.start] not in ("kota", "kabupaten"))  # "… Kota Cilegon"
            )
            road_end = p.end if road else road_end
            if place.outside:
                continue
            if len(place.regions) > 1:
                # a weak one (a desa name several kab/kota have) settles on sure evidence only
                picked = [r for r in place.regions if r in sure]
                if not place.weak:
                    picked = picked or [r for r in place.regions if r in hinted]
                rank = 1 if place.weak else 2
                banten.append((p, picked[0] if len(picked) == 1 else None, 0 if road else rank))
            elif not place.weak:
                banten.append((p, place.regions[0], 0 if road else 2))
            elif place.regions[0] in sure or (p.start and _marks_place(toks[p.start - 1], place)):
                banten.append((p, place.regions[0], 0 if road else 1))

        agencies: list[Agency] = []
        mentions: list[Agency] = []
        addressed: list[Agency] = []
        plain: set[Agency] = set()  # named at least once without a comparison before it
        evidence: list[tuple[int, int, int, Region]] = []  # level, rank, position, region
        near: list[tuple[Match[Place], bool]] = [(p, True) for p, _, _ in banten] + [
            (p, False) for p in outside
        ]
        for a in agency_hits:
            alias = a.value
            if alias.companions and not _has_companion(toks, a, alias.companions):
                continue  # "kader PKB", "ngaji di TPA", "kartu kuning ke pemain"
            if alias.agency not in mentions:
                mentions.append(alias.agency)
            if alias.region is None and near:
                nearest, is_banten = min(near, key=lambda item: _gap(a, item[0]))
                if not is_banten and _gap(a, nearest) <= NEAR_TOKENS * 2 + 1:  # _gap counts half-steps
                    continue  # "samsat bandung": a mention of some other province's office
            if not _likened(toks, a.start):
                plain.add(alias.agency)
            if alias.agency not in agencies:
                agencies.append(alias.agency)
            if toks[a.start].startswith("@") and alias.agency not in addressed:
                addressed.append(alias.agency)
            if alias.region is not None:
                level = LEVEL_PROVINCE if alias.region == Region.PROVINCE else LEVEL_AGENCY
                evidence.append((level, 2, a.start, alias.region))

        places: list[str] = []
        for p, region, rank in banten:
            if region is None:
                continue
            evidence.append((p.value.level, rank, p.start, region))
            if p.value.name not in places:
                places.append(p.value.name)

        region = max(evidence, key=lambda e: (e[0], e[1], -e[2]))[3] if evidence else None
        has_banten = bool(places) or any(a.value.region is not None for a in agency_hits)
        return Recognition(
            agencies=agencies,
            mentions=mentions,
            addressed=addressed,
            region=region,
            places=places,
            outside_banten=bool(outside) and not has_banten,
            likened=[agency for agency in agencies if agency not in plain],
        )


@functools.lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    """The packaged gazetteer, built once per process."""
    return Gazetteer.load()


def _agency_matcher(data: GazetteerData, directory: Traversable) -> PhraseMatcher[AgencyAlias]:
    matcher: PhraseMatcher[AgencyAlias] = PhraseMatcher(strip_prefixes=True)
    owner: dict[tuple[str, ...], tuple[str, AgencyAlias]] = {}
    for agency, entry in data.agencies.items():
        aliases = [(a, AgencyAlias(agency)) for a in entry.plain_aliases()]
        aliases += [(a, AgencyAlias(agency, region)) for a, region in entry.regional.items()]
        for phrase, words in entry.ambiguous.items():
            companions = frozenset(t for w in words for t in matcher.phrase_tokens(w))
            aliases.append((phrase, AgencyAlias(agency, companions=companions)))
        for phrase, value in aliases:
            toks = matcher.phrase_tokens(phrase)
            if not toks:
                raise GazetteerError(
                    f"{directory / 'agencies.yaml'}: {agency}: alias {phrase!r} has no words"
                )
            seen = owner.get(toks)
            if seen is not None and seen[1] != value:
                raise GazetteerError(
                    f"{directory / 'agencies.yaml'}: alias {phrase!r} of {agency} clashes with "
                    f"{seen[0]!r} of {seen[1].agency}"
                )
            owner[toks] = (phrase, value)
    for toks, (_, value) in owner.items():
        matcher.add(toks, value)
    for toks, (_, value) in owner.items():
        matcher.add_joined(toks, value)
    return matcher


def _place_matcher(data: GazetteerData, directory: Traversable) -> PhraseMatcher[Place]:
    # "dipamulang" is "di pamulang", but "diserang" is "attacked" and "Dipati Ukur" a Bandung street: bare
    # city names and one-word places outside Banten keep their prefix ("dipasar kemis" is still Pasar Kemis)
    keep = frozenset(t for e in data.regions.values() for name in e.fallback for t in tokenize(name))
    keep |= frozenset(
        words[0] for aliases in data.outside.values() for a in aliases if len(words := tokenize(a)) == 1
    )
    matcher: PhraseMatcher[Place] = PhraseMatcher(strip_prefixes=True, keep_prefix=keep)
    # alias tokens -> (display name, region, level, weak, shared, village) for every region that lists it;
    # shared is None or the outside places after which the name stays Banten's
    found: dict[tuple[str, ...], list[tuple[str, Region, int, bool, tuple[str, ...] | None, bool]]] = {}

    def note(
        alias: str,
        name: str,
        region: Region,
        level: int,
        weak: bool,
        shared: tuple[str, ...] | None = None,
        village: bool = False,
    ) -> None:
        toks = matcher.phrase_tokens(alias)
        if not toks:
            raise GazetteerError(f"{directory / REGIONS_FILE}: regions.{region}: {alias!r} has no words")
        found.setdefault(toks, []).append((name, region, level, weak, shared, village))

    for region, entry in data.regions.items():
        label = REGION_NAMES[region]
        top = LEVEL_PROVINCE if region == Region.PROVINCE else LEVEL_PLACE
        for alias in entry.names:
            note(alias, label, region, top, False)
            words = tokenize(alias)
            if len(words) > 1 and words[0] == "kabupaten":  # in handles: "@dukcapil_kabserang"
                note("kab" + "".join(words[1:]), label, region, top, False)
        for alias in entry.fallback:
            note(alias, entry.fallback[0].title(), region, LEVEL_FALLBACK, False)
        weak_names, shared_names = set(entry.weak), entry.shared_names()
        for item in [*entry.kecamatan, *entry.places]:
            name, variants = place_variants(item)
            for alias in variants:
                note(alias, name, region, LEVEL_PLACE, name in weak_names, shared_names.get(name))

    # Desa and kelurahan are weak, and give way to every name regions.yaml or outside.yaml lists: a village
    # called like a kecamatan elsewhere must not make that kecamatan ambiguous. A village whose name holds a
    # listed name of its own kab/kota ("Malingping Utara", "Pamulang Barat") is as sure as that name (the
    # longer match wins, so a weak one would hide it); one holding another kab/kota's name is left out.
    listed = {toks: {o[1] for o in options} for toks, options in found.items()}
    for place_name, aliases in data.outside.items():
        for alias in [place_name, *aliases]:
            listed.setdefault(matcher.phrase_tokens(alias), set())
    for region, villages in data.villages.items():
        for item in villages:
            name, variants = place_variants(item)
            for alias in variants:
                toks = matcher.phrase_tokens(alias)
                if toks in listed:
                    continue
                held = [
                    listed[toks[i:j]]
                    for i in range(len(toks))
                    for j in range(i + 1, len(toks) + 1)
                    if toks[i:j] in listed
                ]
                if not held:
                    note(alias, name, region, LEVEL_PLACE, True, village=True)
                elif all(region in regions for regions in held):
                    note(alias, name, region, LEVEL_PLACE, False, village=True)

    names = [(region, matcher.phrase_tokens(a)) for region, e in data.regions.items() for a in e.names]
    places: dict[tuple[str, ...], Place] = {}
    for toks, options in found.items():
        regions = tuple(dict.fromkeys(region for _, region, *_ in options))
        name, _, level, *_ = max(options, key=lambda o: o[2])
        weak = all(o[3] for o in options)
        hints: tuple[Region, ...] = ()
        if level == LEVEL_FALLBACK:
            hints = tuple(dict.fromkeys(r for r, nt in names if r != Region.PROVINCE and _contains(nt, toks)))
        shared = all(o[4] is not None for o in options)
        kept_before = tuple(dict.fromkeys(kept for o in options for kept in o[4] or ()))
        places[toks] = Place(
            name, regions, level, weak, hints, shared, kept_before, village=all(o[5] for o in options)
        )

    for name, aliases in data.outside.items():
        for alias in [name, *aliases]:
            toks = matcher.phrase_tokens(alias)
            if toks in places and not places[toks].outside:
                raise GazetteerError(
                    f"{directory / OUTSIDE_FILE}: outside.{name}: {alias!r} is also a Banten place "
                    f"({places[toks].name}) in {REGIONS_FILE}"
                )
            places[toks] = Place(name, ())

    for toks, place in places.items():
        matcher.add(toks, place)
    for toks, place in places.items():
        matcher.add_joined(toks, place)
    return matcher


def _has_companion(toks: Sequence[str], hit: Match[Any], companions: frozenset[str]) -> bool:
    window = [
        *toks[max(0, hit.start - NEAR_COMPANION) : hit.start],
        *toks[hit.end : hit.end + NEAR_COMPANION],
    ]
    return any(tok.lstrip("#@") in companions or tok.removesuffix("nya") in companions for tok in window)


def _marks_place(word: str, place: Place) -> bool:
    """Whether ``word``, right before a weak name, makes it a place: a place word, or "di" before a name
    that is not only a village's."""
    return word in PLACE_MARKERS or (word == LOCATIVE and not place.village)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def recognize(text: str) -> Recognition:
    """Recognise with the packaged gazetteer."""
    return default_gazetteer().recognize(text)


__all__: Sequence[str] = ["Gazetteer", "GazetteerError", "Recognition", "default_gazetteer", "recognize"]
