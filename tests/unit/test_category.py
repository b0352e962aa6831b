from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.enrich.category import (
    DATA_FILE,
    CategoryGuess,
    CategoryRules,
    CategoryRulesError,
    classify_category,
)
from pipeline.gazetteer.recognizer import default_gazetteer
from schemas.vocab import Agency, Category

A = Agency
C = Category


@pytest.mark.parametrize(
    ("text", "agencies", "category"),
    [
        ("KTP-el saya belum jadi 3 bulan", [A.DUKCAPIL], C.ADMINDUK),
        ("akta kelahiran anak salah nama, harus ke mana?", [], C.ADMINDUK),
        ("Puskesmas tutup jam 12, pasien BPJS disuruh balik besok", [A.PUSKESMAS], C.KESEHATAN),
        ("obat habis terus di RSUD", [A.RSUD], C.KESEHATAN),
        ("PPDB zonasi ga adil, anak saya ga dapet sekolah negeri", [A.DINDIKBUD], C.PENDIDIKAN),
        ("bayar pajak motor di samsat antre 3 jam", [A.SAMSAT], C.PAJAK_KENDARAAN),
        ("Jalan rusak depan kantor samsat", [A.DPUPR, A.SAMSAT], C.JALAN_INFRASTRUKTUR),
        ("jembatan putus, warga harus muter 5 km", [A.DPUPR], C.JALAN_INFRASTRUKTUR),
        ("banjir sepinggang di perumahan kami", [A.BPBD], C.BENCANA),
        ("kebakaran gudang, damkar telat datang", [A.DAMKAR], C.BENCANA),
        ("Air PDAM mati 3 hari di Pamulang", [A.PDAM], C.AIR_BERSIH),
        ("airnya keruh kayak kopi", [A.PDAM], C.AIR_BERSIH),
        ("angkot ngetem sembarangan, dishub kemana", [A.DISHUB], C.TRANSPORTASI),
        ("bansos PKH belum cair padahal terdaftar DTKS", [A.DINSOS], C.BANSOS),
        ("ngurus NIB di OSS error terus", [A.DPMPTSP], C.PERIZINAN),
        ("pungli di pasar, preman minta jatah tiap hari", [], C.KETERTIBAN),
        ("PKL liar tutup trotoar, satpol pp diam aja", [A.SATPOLPP], C.KETERTIBAN),
        ("sampah numpuk seminggu ga diangkut", [A.DLH], C.LINGKUNGAN_SAMPAH),
        ("kena PHK tanpa pesangon, disnaker tolong", [A.DISNAKER], C.KETENAGAKERJAAN),
        ("website pemkot down dari pagi", [A.DISKOMINFO], C.LAYANAN_DIGITAL),
        ("Gubernur harus turun tangan soal pelayanan publik", [A.PEMDA], C.LAYANAN_UMUM),
        ("petugas kelurahan ga ramah, pelayanan lambat", [], C.LAYANAN_UMUM),
        # agency prior decides when no keyword does
        ("kok tutup sih min, katanya buka sampai sore", [A.SAMSAT], C.PAJAK_KENDARAAN),
        ("mantap gercep banget", [A.DAMKAR], C.BENCANA),
    ],
)
def test_categories(text: str, agencies: list[Agency], category: Category) -> None:
    guess = classify_category(text, agencies)
    assert guess.category == category
    assert guess.is_public_service is True
    assert 0.0 < guess.confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "#samsatbanten slot gacor maxwin depo 10k auto wd",
        "Situs gacor hari ini, bonus new member 100%! #pemprovbanten",
        "GIVEAWAY 5 pemenang, follow dan repost #bantenbanjir",
        "open order kue kering, ready stock, cek bio",
        "halo semua apa kabar",
    ],
)
def test_not_public_service(text: str) -> None:
    agencies = default_gazetteer().recognize(text).agencies
    guess = classify_category(text, agencies)
    assert guess.category == C.BUKAN_LAYANAN
    assert guess.is_public_service is False


def test_spam_beats_agency_hashtag() -> None:
    guess = classify_category("slot gacor maxwin malam ini", [A.SAMSAT])
    assert guess.category == C.BUKAN_LAYANAN


def test_public_promo_is_still_public_service() -> None:
    guess = classify_category("Promo pemutihan pajak kendaraan sampai akhir bulan", [A.SAMSAT])
    assert guess.category == C.PAJAK_KENDARAAN
    assert guess.is_public_service


def test_confidence_grows_with_agreeing_evidence() -> None:
    weak = classify_category("sekolahnya jauh", [])
    strong = classify_category("PPDB zonasi sekolah negeri kacau", [A.DINDIKBUD])
    assert weak.category == strong.category == C.PENDIDIKAN
    assert strong.confidence > weak.confidence


def test_confidence_drops_with_competing_evidence() -> None:
    clear = classify_category("banjir dan longsor", [A.BPBD])
    mixed = classify_category("banjir, jalan rusak, jembatan putus", [A.BPBD, A.DPUPR])
    assert mixed.confidence < clear.confidence


def test_repeated_keyword_counts_once() -> None:
    once = classify_category("banjir", [])
    many = classify_category("banjir banjir banjir banjirnya", [])
    assert once.confidence == many.confidence


def test_no_evidence() -> None:
    guess = classify_category("", [])
    assert guess == CategoryGuess(category=C.BUKAN_LAYANAN, confidence=0.3, is_public_service=False)


def test_masked_tokens_do_not_break_it() -> None:
    guess = classify_category("NIK [NIK] ga terdaftar di dukcapil, hubungi [TELEPON]", [A.DUKCAPIL])
    assert guess.category == C.ADMINDUK


def test_every_agency_has_a_prior_and_every_category_has_keywords() -> None:
    import yaml

    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    assert set(data["agency_priors"]) == {a.value for a in Agency}
    assert set(data["categories"]) == {c.value for c in Category}


def test_duplicate_keyword_is_rejected(tmp_path: Path) -> None:
    priors = "\n".join(f"  {a.value}: layanan_umum" for a in Agency)
    path = tmp_path / "rules.yaml"
    path.write_text(
        f"agency_priors:\n{priors}\ncategories:\n  bencana:\n    strong: [banjir]\n"
        "  air_bersih:\n    weak: [Banjir]\n",
        encoding="utf-8",
    )
    with pytest.raises(CategoryRulesError, match=r"air_bersih.*Banjir.*bencana"):
        CategoryRules.load(path)


def test_unknown_category_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("agency_priors: {}\ncategories:\n  cuaca:\n    strong: [hujan]\n", encoding="utf-8")
    with pytest.raises(CategoryRulesError, match=r"rules\.yaml.*cuaca"):
        CategoryRules.load(path)


def test_missing_prior_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("agency_priors:\n  samsat: pajak_kendaraan\ncategories: {}\n", encoding="utf-8")
    with pytest.raises(CategoryRulesError, match="agency_priors"):
        CategoryRules.load(path)
