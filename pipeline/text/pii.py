"""Mask personal data before any model, index or log sees a post.

Passes run from the most to the least specific shape (e-mail, numbers named by the word before them:
NPWP, bank account, BPJS, passport/SIM, NIK/KK; then any 16-digit NIK/KK, phone, name, house number,
birth date, plate) so that a shorter pattern never eats part of a longer one. Only the kinds found are
reported, never the values.

Deliberately left visible: street, village and RT/RW names without a house number (they say where a
flood or a broken road is), agency hotlines and office landlines, and @handles (the public accounts that
posts address and reply to).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.text.matcher import CONFUSABLES
from schemas.vocab import PiiKind

TOKENS: dict[PiiKind, str] = {
    PiiKind.NIK: "[NIK]",
    PiiKind.KK: "[KK]",
    PiiKind.PHONE: "[TELEPON]",
    PiiKind.EMAIL: "[EMAIL]",
    PiiKind.PLATE: "[PLAT]",
    PiiKind.NPWP: "[NPWP]",
    PiiKind.BANK_ACCOUNT: "[REKENING]",
    PiiKind.BPJS: "[BPJS]",
    PiiKind.ID_DOCUMENT: "[DOKUMEN]",
    PiiKind.NAME: "[NAMA]",
    PiiKind.ADDRESS: "[ALAMAT]",
    PiiKind.BIRTH_DATE: "[TGL_LAHIR]",
}


def _words(text: str) -> list[str]:
    return text.split()


class PiiResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    kinds: list[PiiKind]


# The local part may be quoted, as RFC 5322 allows ("andi budi"@gmail.com): the quotes go with it.
_EMAIL = re.compile(
    r"(?:(?<![\w.+%-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]*[A-Za-z0-9_])?|\"[^\"\n@]{1,64}\")"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
# Written to dodge scrapers: "andi [at] gmail [dot] com", "dewi(at)gmail.com", "joko@gmail .com".
_AT = r"(?:\s*[\[({]at[\])}]\s*|\s+@\s*|\s*@\s+)"
_DOT = r"(?:\s*[\[({](?:dot|\.)[\])}]\s*|\s*\.\s*|\s+dot\s+)"
# "nama at gmail dot com": a bare "at" only before a mail provider people use, as it is a common word.
_EMAIL_PROVIDER_AT = re.compile(
    rf"(?<![\w.+%-])[A-Za-z0-9][\w.+%-]*\s+at\s+(?:gmail|yahoo|ymail|hotmail|outlook|live|icloud|proton(?:mail)?)"
    rf"(?:{_DOT}[A-Za-z0-9-]+)*{_DOT}(?:com|id|net|me|co)\b",
    re.IGNORECASE,
)
_EMAIL_SPELLED = re.compile(
    rf"(?<![\w.+%-])[A-Za-z0-9][\w.+%-]*(?:{_AT}|@)[A-Za-z0-9-]+(?:{_DOT}[A-Za-z0-9-]+)*{_DOT}"
    r"(?:com|id|net|org|co|ac|go|sch|info|me|io|biz)\b",
    re.IGNORECASE,
)

# 16 digits with at most one separator between any two of them: "3603 1234 5678 9012", "36.03.12.345678.9012".
# Not part of a longer run of four-digit groups: a 20-digit PLN token "3603 1234 5678 9012 3456" is no NIK.
_SIXTEEN = re.compile(r"(?<!\d)(?<!\d[.-])(?<!\d{4} )\d(?:[ .-]?\d){15}(?!\d)(?![.-]\d)(?! \d{4}(?!\d))")
# Four groups of four joined by one other mark, the same each time: "3603/1234/5678/9012", "3603_1234_…".
_SIXTEEN_GROUPED = re.compile(r"(?<![\d/_–,])\d{4}([/_–,])\d{4}\1\d{4}\1\d{4}(?![\d])(?![/_–,]\d)")
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


def _digits(low: int, high: int) -> str:
    """A run of ``low``–``high`` digits, groups separated by one space, dot or (spaced) dash."""
    return rf"\d(?:(?:\s?[.\-–]\s?|\s)?\d){{{low - 1},{high - 1}}}"


def _named_number(context: str, number: str) -> re.Pattern[str]:
    """``number`` right after a word that names it ("rek BCA 1234567890", "NIK saya 3601…"), with up to
    three short words between (bank name, "saya", "no"); only ``num`` is masked."""
    return re.compile(
        rf"(?P<ctx>\b(?:{context})\b)(?P<mid>(?:[\s:./,-]+[A-Za-z][A-Za-z-]{{0,14}}){{0,3}}[\s:./,-]*)"
        rf"(?P<num>{number})(?![\w])",
        re.IGNORECASE,
    )


# Names that are also words ("desa mandiri", "permata hati") count only after "bank".
_BANKS = (
    r"bca|bri|bni|btn|bsi|bjb|cimb(?:\s+niaga)?|danamon|ocbc|seabank|btpn|muamalat|panin|maybank|"
    r"bank\s+(?:mandiri|permata|mega|jago|banten|dki)"
)
# Dates, clock times and runs of years are not account numbers: "rekening BRI tanggal 12.03.2024".
_DATE_OR_TIME = re.compile(
    r"\d{1,2}\s*[./-]\s*\d{1,2}\s*[./-]\s*\d{2,4}|\d{1,2}[.:]\d{2}(?:\s*[-–]\s*\d{1,2}[.:]\d{2})?"
    r"|(?:(?:19|20)\d{2}\s*){2,}"
)
# Numbers a word before them names, most specific first; every one is at least 8 digits long.
_NAMED: list[tuple[PiiKind, re.Pattern[str]]] = [
    (PiiKind.NPWP, _named_number(r"npwp", _digits(15, 16))),
    (
        PiiKind.BANK_ACCOUNT,
        _named_number(rf"(?:no\.?\s*)?rek(?:ening)?|norek|{_BANKS}", _digits(8, 20)),
    ),
    (
        PiiKind.BPJS,
        _named_number(r"bpjs|kis|jkn|kpj|kartu\s+indonesia\s+sehat|no\.?\s*peserta", _digits(11, 16)),
    ),
    (PiiKind.ID_DOCUMENT, _named_number(r"sim", _digits(12, 14))),
    (PiiKind.ID_DOCUMENT, _named_number(r"paspor|passport", r"[A-Za-z]\s?\d{7}")),
    # A NIK or KK typed one or two digits short or long: the 16-digit pass below only sees exact ones.
    (PiiKind.NIK, _named_number(r"nik|ktp|e-?ktp|kk|nkk|kartu\s+keluarga", _digits(14, 18))),
]
_NPWP_FORMATTED = re.compile(r"(?<![\d.])\d{2}\.\d{3}\.\d{3}\.\d[.-]\d{3}\.\d{3}(?![\d.])")

# Mobile numbers only (08[1-9]…: 0800 is toll-free): landlines printed in posts are agency offices.
# Also typed a digit at a time to dodge scrapers: "0 8 1 2 3 4 5 6 7 8 9".
_SEP = r"(?:\s?[.\-–—‒−/_]{1,2}\s?|\s)"
_PHONE = re.compile(
    rf"(?<![\d+])(?<!\d[.,])(?:(?:\+62|\(\+62\)|%2[Bb]62|0062|62){_SEP}?(?:\(0\)\s?)?(?:8\s?[1-9]\s?\d|\(8[1-9]\d\))|0\s?8\s?[1-9]{_SEP}?\d|\(08[1-9]\d\))"
    rf"(?:{_SEP}?\d){{5,9}}(?!\d)(?![.-]\d)"
)
# A number glued to the word before it is a phone only after one of these ("HP081…", "noHP:081…").
_PHONE_WORD_BEFORE = re.compile(
    r"(?:(?:hp|wa|cp|telp|tlp|telepon|tel|no|nomor|nomer|kontak|call)(?:ku|nya|mu)?|hubungi|%2b)$",
    re.IGNORECASE,
)
_RUPIAH_BEFORE = re.compile(r"\brp\.?\s*$", re.IGNORECASE)

_NAME_CONTEXT = (
    r"(?<!\w)(?i:a\s?[./]\s?n\b\.?|atas\s+nama|nama\s+(?:saya|sy|aku|ku|lengkap|pelapor|pemohon)|namaku|"
    r"nama\s*:)"
)
_HONORIFIC = r"(?i:bpk|bapak|pak|ibu|bu|hj|h|sdr|sdri|sdra|mas|mbak|mba|teh|kang|dr|drs|ir|alm|almh)\.?"
_NAME = re.compile(
    rf"(?P<ctx>{_NAME_CONTEXT}\s*[:,]?\s*(?:(?i:adalah|ialah)\s+)?(?:{_HONORIFIC}\s+){{0,2}})"
    r"(?P<name>[^\W\d_](?:[^\W\d_]|['’-])+(?:[ \t]+[^\W\d_](?:[^\W\d_]|['’.-])*){0,3})"
)
_SELF_NAMED = re.compile(r"nama\s*(?:saya|sy|aku|ku|lengkap|pelapor|pemohon|:)|namaku", re.IGNORECASE)
# "atas nama pemerintah", "a.n. Kepala Dinas": on behalf of an office, not a person.
_NOT_A_NAME = frozenset(
    _words(
        "saya kami kita dia mereka yang dan di ke dari warga pemerintah pemda pemkot pemkab pemprov instansi "
        "dinas kepala camat lurah bupati walikota wali gubernur ketua sekretaris direktur kapolres kapolsek "
        "presiden menteri rakyat masyarakat seluruh semua keluarga wagub wabup wakil sudah udah belum blm "
        "tidak tdk gak ga nggak enggak kok juga masih sedang lagi telah akan ada itu ini tersebut lengkap "
        "asli baru lama salah beda sama kosong tertera tercantum hilang ganda dobel double muncul keluar "
        "masuk kemanusiaan pt cv"
    )
)
# Words that end a capitalised name run: "a.n. Siti Rp 1.500.000", "a.n. Budi RT 03".
_AFTER_NAME = frozenset(_words("rp rt rw no nik kk hp wa jl jln kel kec desa kp blok bank via di dari ke"))
# Words that end a name typed in lower case after "nama saya" ("nama saya budi santoso tinggal di …").
_ENDS_A_NAME = frozenset(
    _words(
        "tinggal umur usia mau ingin mohon minta tolong kenapa mengapa gimana bagaimana apa kapan min admin "
        "kak sejak tahun thn lahir alamat asal pengen pingin bisa boleh mas mbak pak bu"
    )
)
# Affixed verbs in lower case ("nama saya dipanggil", "nama sy terdaftar") are not names either.
_AFFIXED = re.compile(r"^(?:di|ter|ber|me|mem|men|meng|meny|se|per)[a-z]{4,}$")

_STREET = (
    r"\b(?i:jl|jln|jalan|gg|gang|komp|komplek|kompleks|perum|perumahan|blok|blk|cluster|kav|kavling|kp|"
    r"kampung|dusun|dsn)\b"
)
# A house number after a street, estate or block name, in the same clause: "Jl. Raya Serang No. 12", "Blok C5
# No. 21"; not "jalan nomor 1 di Banten" (no name between) or "tidak jalan, laporan no 1234" (another clause).
_HOUSE_NUMBER = re.compile(
    rf"(?P<ctx>{_STREET}\.?\s+[^\n;!?,]{{1,40}}?|\b(?i:rumah(?!\s+sakit)|alamat)\b\W{{0,3}})(?P<num>\b(?i:no|nomor|nmr)\b\.?\s*\d{{1,4}}[A-Za-z]?(?:\s*[/-]\s*\d{{1,4}})?\b)"
)
_RT_RW = re.compile(r"\b(?i:rt)\.?\s*\d{1,3}\s*[/,]?\s*(?i:rw)\.?\s*\d{1,3}\b")

_MONTHS = r"jan|feb|mar|apr|mei|jun|jul|agu|agt|ags|sep|okt|nov|des"
_BIRTH_DATE = re.compile(
    r"(?P<ctx>\b(?i:lahir|tgl\.?\s*lahir|tanggal\s+lahir|ttl|dob)\b\s*[:,]?\s*(?i:di\s+|pada\s+)?"
    r"(?:[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?\s*,\s*)?(?i:tgl\.?\s*|tanggal\s+)?)"
    rf"(?P<date>\d{{1,2}}\s*[-/.]\s*\d{{1,2}}\s*[-/.]\s*\d{{2,4}}|\d{{1,2}}\s+(?i:{_MONTHS})[a-z]*\.?\s+\d{{4}})"
)

PLATE_REGIONS = _words(
    "A B D E F G H K L M N P R S T W Z AA AB AD AE AG BA BB BD BE BG BH BK BL BM BN BP "
    "DA DB DD DE DG DH DK DL DM DN DR DT EA EB ED KB KH KT KU PA PB"
)
_PLATE = re.compile(
    rf"(?<![\w@#/.-])(?P<pre>{'|'.join(sorted(PLATE_REGIONS, key=len, reverse=True))})"
    r"(?P<sp1>[\s.-]?)(?P<num>\d{1,4})(?P<sp2>[\s.-]?)(?P<suf>[A-Za-z]{1,3})(?![\w@])",
    re.IGNORECASE,
)
_PLATE_CONTEXT = re.compile(r"\b(?:plat|pelat|nopol|no\.?\s*pol|nomor\s+polisi|tnkb)\b", re.IGNORECASE)
# Suffixes that are units or words, not plate series: "S 1 ya", "B 20 rb", "KB 2 anak" (too long anyway).
_UNIT_SUFFIXES = frozenset(_words("rb rbu jt km kg cm mm ml gb mb pm am wib wit x kw th thn bln hr mnt"))
_WORD_SUFFIXES = frozenset(_words("ya yg di ke dan aja an sd dr lg sj kok sih deh dong nih tuh org no"))
# Numbering that shares the plate shape: addresses and rooms ("Blok B 12 No 3", "Kelas A 12 IPA"), stalls,
# queues and seats ("kios A 12 B", "antrian B 12 C"), phone models ("Oppo A 78 NFC").
_NOT_PLATE_WORD = re.compile(
    r"\b(?:blok|blk|gang|gg|no|nomor|rt|rw|kav|kavling|lt|lantai|unit|tower|tipe|type|kelas|ruang|pintu|"
    r"kios|lapak|los|ruko|antrian|antrean|loket|tribun|halte|meja|kursi|seat|gate|peron|jalur|zona|gerbong|"
    r"kamar|bangsal|oppo|samsung|galaxy|redmi|xiaomi|vivo|realme|iphone|infinix|tecno|poco|nokia|asus|lenovo)"
    r"\W*$",
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
            if int(re.sub(r"\D", "", raw)[:2]) not in PROVINCE_CODES:
                return raw
            kind = PiiKind.NIK
        found.add(kind)
        return TOKENS[kind]

    return _SIXTEEN_GROUPED.sub(repl, _SIXTEEN.sub(repl, text))


def _mask_named_numbers(text: str, found: set[PiiKind]) -> str:
    for kind, pattern in _NAMED:

        def repl(m: re.Match[str], kind: PiiKind = kind) -> str:
            num = m.group("num")
            if _THOUSANDS.fullmatch(num) or _DATE_OR_TIME.fullmatch(num.strip()):
                return m.group(0)  # an amount, a date, a time: "rekening Rp 1.500.000", "BRI jam 08.00"
            if _PHONE.fullmatch(num):
                return m.group(0)  # "Bank Mandiri 0812…": the phone pass names it a phone
            if kind is PiiKind.NIK:  # the nearest of "kk" / "nik" before the number decides
                last = list(_ID_CONTEXT.finditer(m.group("ctx") + m.group("mid")))
                kind = PiiKind.KK if last and last[-1].group("kk") else PiiKind.NIK
            found.add(kind)
            return m.group("ctx") + m.group("mid") + TOKENS[kind]

        text = pattern.sub(repl, text)
    return text


def _mask_phones(text: str, found: set[PiiKind]) -> str:
    def repl(m: re.Match[str]) -> str:
        raw, before = m.group(0), text[max(0, m.start() - _CONTEXT_CHARS) : m.start()]  # bounded: linear time
        if (_THOUSANDS.fullmatch(raw) and not raw.startswith("0")) or _RUPIAH_BEFORE.search(before):
            return raw  # "Rp 62.812.345.678" (an amount never starts with 0: "081.234.567.890" is a phone)
        if before and before[-1].isalpha() and not _PHONE_WORD_BEFORE.search(before):
            return raw  # inside a code: "TRX0812345678"
        found.add(PiiKind.PHONE)
        return TOKENS[PiiKind.PHONE]

    return _PHONE.sub(repl, text)


def _prefix_length(text: str, words: int) -> int:
    """Characters of ``text`` up to the end of its first ``words`` whitespace-separated words."""
    spans = list(re.finditer(r"\S+", text))
    return spans[words - 1].end()


def _name_words(m: re.Match[str]) -> int:
    """How many words of the match's ``name`` group are the name (0: none, the match is no name)."""
    words = m.group("name").split()
    if words[0].lower() in _NOT_A_NAME:
        return 0
    self_named = _SELF_NAMED.search(m.group("ctx")) is not None
    if words[0][0].islower() and (not self_named or _AFFIXED.match(words[0]) or len(words[0]) < 3):
        return 0  # "atas nama baik sekolah": only "nama saya budi" is trusted in lower case
    kept = 0
    for word in words:
        bare = word.lower().rstrip(".")
        if bare in _AFTER_NAME or (kept and (bare in _NOT_A_NAME or bare in _ENDS_A_NAME)):
            break
        if kept and word[0].islower() and (not self_named or _AFFIXED.match(word) or len(bare) < 2):
            break  # a lower-case word goes on a name only after "nama saya": "Budi santoso"
        kept += 1
    return kept


def _mask_names(text: str, found: set[PiiKind]) -> str:
    out, position = [], 0
    while (m := _NAME.search(text, position)) is not None:
        kept = _name_words(m)
        if kept == 0:
            out.append(text[position : m.start("name")])
            position = m.start("name")  # the words after the context may hold the next one
            continue
        end = m.start("name") + _prefix_length(m.group("name"), kept)
        out.append(text[position : m.start("name")] + TOKENS[PiiKind.NAME])
        found.add(PiiKind.NAME)
        position = end  # the words not kept may hold the next name's context ("a.n. Siti dan a.n. Budi")
    return "".join(out) + text[position:]


def _sub(pattern: re.Pattern[str], kind: PiiKind, text: str, found: set[PiiKind]) -> str:
    """Each match of ``pattern`` becomes ``kind``'s token; a ``ctx`` group (the words naming it) stays."""

    def repl(m: re.Match[str]) -> str:
        found.add(kind)
        return (m.groupdict().get("ctx") or "") + TOKENS[kind]

    return pattern.sub(repl, text)


_LOOK_ALIKE = {**CONFUSABLES, ord("\u0423"): ord("y"), ord("\u3002"): ord(".")}
"""Cyrillic and Greek look-alikes of Latin letters (the matcher's, and У) and the ideographic full stop,
one character for one."""


def _sub_looking_alike(
    pattern: re.Pattern[str],
    kind: PiiKind,
    text: str,
    found: set[PiiKind],
    keep: Callable[[re.Match[str], str], bool] | None = None,
) -> str:
    """As ``_sub``, but matched on a copy with look-alike letters folded, so "аndi@gmаil.com" (Cyrillic а)
    is an address too; the copy has the text's length, so a match's span is the original's. ``keep(m,
    shadow)``: True leaves a match as written (``_is_plate``'s context rules)."""
    shadow = text if text.isascii() else text.translate(_LOOK_ALIKE)
    out: list[str] = []
    last = 0
    for m in pattern.finditer(shadow):
        if keep is not None and keep(m, shadow):
            continue
        found.add(kind)
        ctx = text[m.start("ctx") : m.end("ctx")] if "ctx" in pattern.groupindex and m.group("ctx") else ""
        out += [text[last : m.start()], ctx, TOKENS[kind]]
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _mask_addresses(text: str, found: set[PiiKind]) -> str:
    text = _sub(_HOUSE_NUMBER, PiiKind.ADDRESS, text, found)
    token = TOKENS[PiiKind.ADDRESS]

    def rt_rw(m: re.Match[str]) -> str:  # a neighbourhood alone locates a complaint; with a house, a person
        return token if token in text[max(0, m.start() - 40) : m.start()] else m.group(0)

    return _RT_RW.sub(rt_rw, text)


def _is_plate(m: re.Match[str], text: str) -> bool:
    num, suf = m.group("num"), m.group("suf").lower()
    if suf in _UNIT_SUFFIXES:
        return False
    before = text[max(0, m.start() - 25) : m.start()]
    if _PLATE_CONTEXT.search(before):
        return True
    if _NOT_PLATE_WORD.search(before):
        return False
    if len(num) < 3 and suf in _WORD_SUFFIXES:
        return False
    return len(num) >= 2  # "D 3 PNS", "A 1": too short to tell from a grade or a code without "plat" before


def _mask_plates(text: str, found: set[PiiKind]) -> str:
    return _sub_looking_alike(
        _PLATE, PiiKind.PLATE, text, found, keep=lambda m, shadow: not _is_plate(m, shadow)
    )


def mask_pii(text: str) -> PiiResult:
    """Replace the personal data this module knows (see ``TOKENS``) with tokens."""
    found: set[PiiKind] = set()
    text = _sub_looking_alike(_EMAIL, PiiKind.EMAIL, text, found)
    text = _sub_looking_alike(_EMAIL_SPELLED, PiiKind.EMAIL, text, found)
    text = _sub_looking_alike(_EMAIL_PROVIDER_AT, PiiKind.EMAIL, text, found)
    text = _sub(_NPWP_FORMATTED, PiiKind.NPWP, text, found)
    text = _mask_named_numbers(text, found)
    text = _mask_sixteen(text, found)
    text = _mask_phones(text, found)
    text = _mask_names(text, found)
    text = _mask_addresses(text, found)
    text = _sub(_BIRTH_DATE, PiiKind.BIRTH_DATE, text, found)
    text = _mask_plates(text, found)
    return PiiResult(text=text, kinds=sorted(found))


def mask_structure(value: Any) -> tuple[Any, set[PiiKind]]:
    """Every string inside ``value`` (dicts and lists, any depth) masked, and the kinds found: for the
    fields besides ``text`` that a platform may fill with personal data (captions, quoted posts, links)."""
    found: set[PiiKind] = set()

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            result = mask_pii(item)
            found.update(result.kinds)
            return result.text
        if isinstance(item, dict):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [walk(inner) for inner in item]
        return item

    return walk(value), found
