"""Mask personal data before any model, index or log sees a post.

Passes run from the most to the least specific shape (e-mail, 16-digit NIK/KK, phone, plate) so that a
shorter pattern never eats part of a longer one. Only the kinds found are reported, never the values.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from schemas.vocab import PiiKind

TOKENS: dict[PiiKind, str] = {
    PiiKind.NIK: "[NIK]",
    PiiKind.KK: "[KK]",
    PiiKind.PHONE: "[TELEPON]",
    PiiKind.EMAIL: "[EMAIL]",
    PiiKind.PLATE: "[PLAT]",
}


def _words(text: str) -> list[str]:
    return text.split()


class PiiResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    kinds: list[PiiKind]


_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]*[A-Za-z0-9_])?@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)

# 16 digits with at most one separator between any two of them: "3603 1234 5678 9012", "36.03.12.345678.9012".
_SIXTEEN = re.compile(r"(?<!\d)(?<!\d[.-])\d(?:[ .-]?\d){15}(?!\d)(?![.-]\d)")
_THOUSANDS = re.compile(r"\d{1,3}(?:[.,]\d{3})+")

# BPS province codes, including the Papua provinces created in 2022 (91..96).
PROVINCE_CODES = frozenset(
    (
        *range(11, 20),
        21,
        *range(31, 37),
        *range(51, 54),
        *range(61, 66),
        *range(71, 77),
        81,
        82,
        *range(91, 97),
    )
)

_ID_CONTEXT = re.compile(
    r"(?P<kk>\b(?:no(?:mor)?\.?\s*)?(?:kk|nkk|kartu\s+keluarga)\b)|(?P<nik>\b(?:nik|ktp|e-?ktp|ktp-?el)\b)",
    re.IGNORECASE,
)
_CONTEXT_CHARS = 40

# Mobile numbers only: landlines printed in posts are agency offices, not people.
_SEP = r"(?:\s?[.-]\s?|\s)"
_PHONE = re.compile(
    rf"(?<![\w+])(?:(?:\+62|\(\+62\)|62){_SEP}?8\d{{2}}|08\d{{2}})(?:{_SEP}?\d){{5,9}}(?!\d)(?![.-]\d)"
)

PLATE_REGIONS = _words(
    "A B D E F G H K L M N P R S T W Z AA AB AD AE AG BA BB BD BE BG BH BK BL BM BN BP "
    "DA DB DD DE DG DH DK DL DM DN DR DT EA EB ED KB KH KT KU PA PB"
)
_PLATE = re.compile(
    rf"(?<![\w@#/])(?P<pre>{'|'.join(sorted(PLATE_REGIONS, key=len, reverse=True))})"
    r"(?P<sp1>\s?)(?P<num>\d{1,4})(?P<sp2>\s?)(?P<suf>[A-Za-z]{1,3})(?![\w@])",
    re.IGNORECASE,
)
_PLATE_CONTEXT = re.compile(r"\b(?:plat|pelat|nopol|no\.?\s*pol|nomor\s+polisi|tnkb)\b", re.IGNORECASE)
# Suffixes that are units or words, not plate series: "S 1 ya", "B 20 rb", "KB 2 anak" (too long anyway).
_UNIT_SUFFIXES = frozenset(_words("rb rbu jt km kg cm mm ml gb mb pm am wib wit x kw th thn bln hr mnt"))
_WORD_SUFFIXES = frozenset(_words("ya yg di ke dan aja an sd dr lg sj kok sih deh dong nih tuh org no"))
# Address and room numbering ("Blok B 12 No 3", "Kelas A 12 IPA") shares the plate shape.
_ADDRESS_WORD = re.compile(
    r"\b(?:blok|blk|gang|gg|no|nomor|rt|rw|kav|kavling|lt|lantai|unit|tower|tipe|type|kelas|ruang|pintu)\W*$",
    re.IGNORECASE,
)


def _mask_sixteen(text: str, found: set[PiiKind]) -> str:
    def repl(m: re.Match[str]) -> str:
        raw = m.group(0)
        if _THOUSANDS.fullmatch(raw):
            return raw  # "1.500.000.000.000.000" style amounts
        kind: PiiKind | None = None
        last_pos = -1
        window = text[max(0, m.start() - _CONTEXT_CHARS) : m.start()]
        for ctx in _ID_CONTEXT.finditer(window):
            if ctx.start() > last_pos:
                last_pos = ctx.start()
                kind = PiiKind.KK if ctx.group("kk") else PiiKind.NIK
        if kind is None:
            if int(raw[:2]) not in PROVINCE_CODES:
                return raw
            kind = PiiKind.NIK
        found.add(kind)
        return TOKENS[kind]

    return _SIXTEEN.sub(repl, text)


def _is_plate(m: re.Match[str], text: str) -> bool:
    pre, num, suf = m.group("pre"), m.group("num"), m.group("suf").lower()
    if suf in _UNIT_SUFFIXES:
        return False
    before = text[max(0, m.start() - 25) : m.start()]
    if _PLATE_CONTEXT.search(before):
        return True
    if _ADDRESS_WORD.search(before):
        return False
    if len(num) < 3 and suf in _WORD_SUFFIXES:
        return False
    if not (pre.isupper() and m.group("suf").isupper()) and len(num) < 2:
        return False
    # Degrees and grades typed as "S1", "D3", "S2 UI": a plate that short is always spaced out.
    return not (len(num) == 1 and not m.group("sp1") and pre.upper() in ("S", "D"))


def _mask_plates(text: str, found: set[PiiKind]) -> str:
    def repl(m: re.Match[str]) -> str:
        if not _is_plate(m, text):
            return m.group(0)
        found.add(PiiKind.PLATE)
        return TOKENS[PiiKind.PLATE]

    return _PLATE.sub(repl, text)


def mask_pii(text: str) -> PiiResult:
    """Replace NIK/KK numbers, mobile numbers, e-mail addresses and vehicle plates with tokens."""
    found: set[PiiKind] = set()

    def sub(pattern: re.Pattern[str], kind: PiiKind, value: str) -> str:
        def repl(m: re.Match[str]) -> str:
            found.add(kind)
            return TOKENS[kind]

        return pattern.sub(repl, value)

    text = sub(_EMAIL, PiiKind.EMAIL, text)
    text = _mask_sixteen(text, found)
    text = sub(_PHONE, PiiKind.PHONE, text)

    text = _mask_plates(text, found)
    return PiiResult(text=text, kinds=sorted(found))
