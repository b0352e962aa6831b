"""The gazetteer's YAML files as validated models, so a typo in the data fails loudly at start-up."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from schemas.vocab import Agency, Region

DATA_DIR: Traversable = files("pipeline.gazetteer").joinpath("data")
"""The packaged data (package data of the wheel); tests and operators may load another directory."""
AGENCIES_FILE = "agencies.yaml"
REGIONS_FILE = "regions.yaml"
OUTSIDE_FILE = "outside.yaml"
VILLAGES_FILE = "villages.yaml"


class GazetteerError(ValueError):
    """Invalid gazetteer data; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgencyEntry(_Strict):
    names: list[str] = []
    abbreviations: list[str] = []
    misspellings: list[str] = []
    handles: list[str] = []
    apps: list[str] = []
    phrases: list[str] = []
    regional: dict[str, Region] = {}
    ambiguous: dict[str, list[str]] = {}
    """Short forms that also mean something else ("pkb" is a party, "tpa" a Qur'an school): alias ->
    words of which one must be near it ("pkb" -> pajak, motor, stnk ...)."""

    def plain_aliases(self) -> list[str]:
        return [
            *self.names,
            *self.abbreviations,
            *self.misspellings,
            *self.handles,
            *self.apps,
            *self.phrases,
        ]


PlaceItem = str | dict[str, list[str]]


def place_variants(item: PlaceItem) -> tuple[str, list[str]]:
    """Display name and all aliases (the name included) of a place entry."""
    if isinstance(item, str):
        return item, [item]
    ((name, variants),) = item.items()
    return name, [name, *variants]


class RegionEntry(_Strict):
    names: list[str] = []
    fallback: list[str] = []
    kecamatan: list[PlaceItem] = []
    places: list[PlaceItem] = []
    weak: list[str] = []
    shared: list[PlaceItem] = []
    """Names that also name a place outside Banten; ``{Name: [outside place, ...]}`` lists the outside places
    that may follow the name without making it theirs (the airport "soekarno hatta jakarta")."""

    @field_validator("kecamatan", "places")
    @classmethod
    def _one_name_per_item(cls, items: list[PlaceItem]) -> list[PlaceItem]:
        for item in items:
            if isinstance(item, dict) and len(item) != 1:
                raise ValueError(f"an entry with variants must have exactly one name, got {sorted(item)}")
        return items

    def place_names(self) -> set[str]:
        return {place_variants(item)[0] for item in [*self.kecamatan, *self.places]}

    def shared_names(self) -> dict[str, tuple[str, ...]]:
        """Each shared name, with the outside places after which it stays the Banten place."""
        out: dict[str, tuple[str, ...]] = {}
        for item in self.shared:
            name, variants = place_variants(item)
            out[name] = tuple(variants[1:])
        return out


def codes_as_text(value: Any) -> Any:
    """Region codes as keys: an unquoted YAML key 3603 arrives as an int."""
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


class RegionsFile(_Strict):
    regions: dict[Region, RegionEntry]

    @field_validator("regions", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        return codes_as_text(value)


class OutsideFile(_Strict):
    outside: dict[str, list[str]]


class VillagesFile(_Strict):
    villages: dict[Region, list[PlaceItem]]

    @field_validator("villages")
    @classmethod
    def _one_name_per_item(cls, value: dict[Region, list[PlaceItem]]) -> dict[Region, list[PlaceItem]]:
        for items in value.values():
            RegionEntry._one_name_per_item(items)
        return value

    @field_validator("villages", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        return codes_as_text(value)


M = TypeVar("M")


def _read(path: Traversable, adapter: TypeAdapter[M]) -> M:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GazetteerError(f"{path}: cannot read: {exc}") from None
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise GazetteerError(f"{path}: {problems}") from None


class GazetteerData(_Strict):
    agencies: dict[Agency, AgencyEntry]
    regions: dict[Region, RegionEntry]
    outside: dict[str, list[str]]
    villages: dict[Region, list[PlaceItem]] = {}
    """Desa and kelurahan, weak names (``villages.yaml``)."""


def load_data(directory: Traversable | None = None) -> GazetteerData:
    directory = directory or DATA_DIR
    agencies = _read(directory / AGENCIES_FILE, TypeAdapter(dict[Agency, AgencyEntry]))
    regions = _read(directory / REGIONS_FILE, TypeAdapter(RegionsFile)).regions
    outside = _read(directory / OUTSIDE_FILE, TypeAdapter(OutsideFile)).outside
    villages_path = directory / VILLAGES_FILE
    villages = _read(villages_path, TypeAdapter(VillagesFile)).villages if villages_path.is_file() else {}
    for code, entry in regions.items():
        for key, names in (("weak", set(entry.weak)), ("shared", set(entry.shared_names()))):
            unknown = sorted(names - entry.place_names())
            if unknown:
                raise GazetteerError(
                    f"{directory / REGIONS_FILE}: regions.{code}.{key}: "
                    f"not a kecamatan or place of {code}: {unknown}"
                )
        if stray := sorted({o for kept in entry.shared_names().values() for o in kept} - set(outside)):
            raise GazetteerError(
                f"{directory / REGIONS_FILE}: regions.{code}.shared: not a place of {OUTSIDE_FILE}: {stray}"
            )
    return GazetteerData(agencies=agencies, regions=regions, outside=outside, villages=villages)
