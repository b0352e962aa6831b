"""Official accounts of agencies: the gazetteer's @handles plus a deployer's ``PANTAU_ACCOUNTS_FILE``.

An account is recognised by (platform, author id) where the file gives the id, since handles change;
otherwise by handle, compared without '@', case, dots, underscores and an "official" suffix. Hashtags
(``#samsatbanten``) name a topic, not an author, and are never accounts.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pipeline.gazetteer.loader import GazetteerData, load_data
from schemas.vocab import Agency, Platform, Region


class AccountsFileError(ValueError):
    """The accounts file cannot be read; the message names the file and the entry."""


class Account(BaseModel):
    """One official account: whose it is and, for a kab/kota office, which region it serves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agency: Agency
    platform: Platform | None = None
    id: str | None = None
    handle: str | None = None
    region: Region | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value  # an unquoted YAML id arrives as an int

    @field_validator("handle")
    @classmethod
    def _not_a_hashtag(cls, value: str | None) -> str | None:
        if value is not None and value.strip().startswith("#"):
            raise ValueError(f"{value!r} is a hashtag, not an account")
        return value


class AccountsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[Account] = []


def handle_key(handle: str) -> str:
    """``@BPBD_Banten.Official`` → ``bpbdbanten``: what two spellings of one handle have in common."""
    key = "".join(ch for ch in handle.lower() if ch.isalnum())
    return key.removesuffix("official") or key


class OfficialAccounts:
    def __init__(self, accounts: list[Account]) -> None:
        self.by_id: dict[tuple[str, str], Account] = {}
        self.by_handle: dict[str, Account] = {}
        for account in accounts:
            if account.platform is not None and account.id:
                self.by_id[(account.platform.value, account.id)] = account
            if account.handle:
                self.by_handle[handle_key(account.handle)] = account

    @classmethod
    def load(cls, accounts_file: Path | None = None, data: GazetteerData | None = None) -> OfficialAccounts:
        """The gazetteer's accounts, then the file's (a file entry wins for the same handle)."""
        return cls(gazetteer_accounts(data or load_data()) + read_accounts_file(accounts_file))

    def find(self, platform: str, author_id: str | None, handle: str | None) -> Account | None:
        if author_id and (account := self.by_id.get((platform, author_id))) is not None:
            return account
        if not handle or handle.strip().startswith("#"):
            return None
        return self.by_handle.get(handle_key(handle))


def gazetteer_accounts(data: GazetteerData) -> list[Account]:
    accounts = []
    for agency, entry in data.agencies.items():
        for alias in entry.handles:
            if alias.startswith("@"):
                accounts.append(Account(agency=agency, handle=alias))
        for alias, region in entry.regional.items():
            if alias.startswith("@"):
                accounts.append(Account(agency=agency, handle=alias, region=region))
    return accounts


def read_accounts_file(path: Path | None) -> list[Account]:
    if path is None:
        return []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return AccountsFile.model_validate(raw).accounts
    except (OSError, yaml.YAMLError) as exc:
        raise AccountsFileError(f"{path}: cannot read: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise AccountsFileError(f"{path}: {problems}") from None
