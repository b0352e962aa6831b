"""The in-domain labelled set: every row follows data/indomain/README.md, and no story crosses splits.

A post that has a near-twin in another split would let a run score itself on what it trained on; the check
is the one the data README describes (character 4-gram Jaccard, over 0.33 counts as a twin)."""

from __future__ import annotations

import json
import re
from itertools import combinations

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.model.data import INDOMAIN_DIR
from schemas.vocab import Agency, Category, Platform, Region

SPLITS = ("train", "valid", "test", "test2", "valid2")
NEAR_TWIN = 0.33


class InDomainPost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^idm-\d{4}$")
    text: str = Field(min_length=1)
    sentiment: str = Field(pattern=r"^(negative|neutral|positive)$")
    category: Category
    platform: Platform
    agencies: list[Agency]
    mentions: list[Agency] | None = None
    region: Region | None
    author: str | None = None
    official_account: Agency | None = None

    @model_validator(mode="after")
    def _consistent(self) -> InDomainPost:
        if (self.author is None) != (self.official_account is None):
            raise ValueError("an official reply has both author and official_account")
        if self.official_account is not None:
            if self.sentiment != "neutral":
                raise ValueError("agency replies are neutral (guideline rule 5)")
            if self.official_account not in self.agencies:
                raise ValueError("an agency's reply is about that agency")
        if self.mentions is not None:
            extra = set(self.agencies) - set(self.mentions) - {self.official_account}
            if extra:
                raise ValueError(f"agencies {sorted(extra)} are not among the mentions")
        return self


def _rows() -> dict[str, list[InDomainPost]]:
    return {
        split: [InDomainPost.model_validate_json(line) for line in path.read_text("utf-8").splitlines()]
        for split in SPLITS
        if (path := INDOMAIN_DIR / f"{split}.jsonl").exists()
    }


ROWS = _rows()


def test_every_row_follows_the_format_and_ids_and_texts_are_unique() -> None:
    posts = [post for rows in ROWS.values() for post in rows]
    assert set(ROWS) == set(SPLITS)
    assert len({p.id for p in posts}) == len(posts)
    assert len({p.text for p in posts}) == len(posts)
    added = [p for p in posts if p.id >= "idm-4001"]
    assert added and all(p.mentions is not None for p in added)


def _grams(text: str) -> frozenset[str]:
    folded = " ".join(text.lower().split())
    return frozenset(folded[i : i + 4] for i in range(max(1, len(folded) - 3)))


@pytest.mark.parametrize(("first", "second"), list(combinations(SPLITS, 2)))
def test_no_post_has_a_near_twin_in_another_split(first: str, second: str) -> None:
    others = [(p.id, _grams(p.text)) for p in ROWS[second]]
    twins = []
    for post in ROWS[first]:
        grams = _grams(post.text)
        for other, other_grams in others:
            if len(grams & other_grams) / len(grams | other_grams) > NEAR_TWIN:
                twins.append((post.id, other))
    assert not twins


def test_the_readme_counts_are_the_files() -> None:
    readme = (INDOMAIN_DIR / "README.md").read_text("utf-8")
    for split, rows in ROWS.items():
        counts = {s: sum(p.sentiment == s for p in rows) for s in ("negative", "neutral", "positive")}
        row = f"| {split} | {counts['negative']} | {counts['neutral']} | {counts['positive']} | {len(rows)} |"
        assert row in readme
        assert re.search(rf"\| `{split}\.jsonl` \| {len(rows)} \|", readme)


def test_the_json_lines_are_as_written_by_json_dumps() -> None:
    """One layout, so that a relabel shows as a one-line diff."""
    for split in SPLITS:
        for line in (INDOMAIN_DIR / f"{split}.jsonl").read_text("utf-8").splitlines():
            assert line == json.dumps(json.loads(line), ensure_ascii=False), line[:60]
