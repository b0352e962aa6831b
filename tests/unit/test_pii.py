from __future__ import annotations

import pytest

from pipeline.text.normalize import normalize_text
from pipeline.text.pii import mask_pii
from schemas.vocab import PiiKind

NIK = PiiKind.NIK
KK = PiiKind.KK
PHONE = PiiKind.PHONE
EMAIL = PiiKind.EMAIL
PLATE = PiiKind.PLATE


@pytest.mark.parametrize(
    ("raw", "masked", "kinds"),
    [
        # NIK / KK
        ("NIK saya 3603123456789012 tolong dicek min", "NIK saya [NIK] tolong dicek min", [NIK]),
        ("nik: 3603 1234 5678 9012 ga kebaca", "nik: [NIK] ga kebaca", [NIK]),
        ("No KK 3671012345678901 belum update", "No KK [KK] belum update", [KK]),
        ("nomor kartu keluarga 36.71.01.234567.8901", "nomor kartu keluarga [KK]", [KK]),
        ("nkk 3671-0123-4567-8901 kok beda", "nkk [KK] kok beda", [KK]),
        ("ktp 3604123456789012 hilang", "ktp [NIK] hilang", [NIK]),
        ("3201123456789012 ini punya ibu saya", "[NIK] ini punya ibu saya", [NIK]),  # no context: Jabar code
        ("KK dan NIK: 3603123456789012", "KK dan NIK: [NIK]", [NIK]),  # nearest context word wins
        # phones
        ("wa aja 0812-3456-7890 ya", "wa aja [TELEPON] ya", [PHONE]),
        ("hubungi 081234567890", "hubungi [TELEPON]", [PHONE]),
        ("+62 812 3456 7890 admin", "[TELEPON] admin", [PHONE]),
        ("call 62857.1234.5678", "call [TELEPON]", [PHONE]),
        ("(+62) 813-1111-2222", "[TELEPON]", [PHONE]),
        ("wa.me/6281234567890", "wa.me/[TELEPON]", [PHONE]),
        ("0856 1234 567", "[TELEPON]", [PHONE]),
        ("WA 0 8 1 2 3 4 5 6 7 8 9 0 ya", "WA [TELEPON] ya", [PHONE]),  # a digit at a time
        ("0 8 1 2 - 3 4 5 6 - 7 8 9", "[TELEPON]", [PHONE]),
        ("hub +62 8 1 2 3 4 5 6 7 8 9", "hub [TELEPON]", [PHONE]),
        ("skor 0 8 1 lawan 2, antri no 0 8 9", "skor 0 8 1 lawan 2, antri no 0 8 9", []),  # too short
        # e-mail
        ("kirim ke budi.santoso@gmail.com ya", "kirim ke [EMAIL] ya", [EMAIL]),
        ("cs: layanan_warga+banten@mail.co.id.", "cs: [EMAIL].", [EMAIL]),
        ('surel "andi budi"@gmail.com ya', "surel [EMAIL] ya", [EMAIL]),  # a quoted local part
        ('katanya "gratis"@samsat.go.id', "katanya [EMAIL]", [EMAIL]),
        # plates
        ("motor B 1234 KJL ditilang", "motor [PLAT] ditilang", [PLATE]),
        ("plat A1234BCD nabrak", "plat [PLAT] nabrak", [PLATE]),
        ("mobil AB 12 C parkir liar", "mobil [PLAT] parkir liar", [PLATE]),
        ("nopol b 1234 kjl", "nopol [PLAT]", [PLATE]),
        ("truk a 9876 zx ugal-ugalan", "truk [PLAT] ugal-ugalan", [PLATE]),
        ("plat d 1 ab", "plat [PLAT]", [PLATE]),
        # several at once, kinds sorted and unique
        (
            "NIK 3603123456789012, hp 081234567890 / 085712345678, email a@b.id, plat B 1 ZZ",
            "NIK [NIK], hp [TELEPON] / [TELEPON], email [EMAIL], plat [PLAT]",
            [EMAIL, NIK, PHONE, PLATE],
        ),
    ],
)
def test_masks(raw: str, masked: str, kinds: list[PiiKind]) -> None:
    result = mask_pii(raw)
    assert result.text == masked
    assert result.kinds == kinds


@pytest.mark.parametrize(
    "text",
    [
        "Biaya balik nama Rp 150.000 katanya",
        "harga Rp1.250.000,- mahal",
        "tahun 2023 sampai 2025 belum beres",
        "RT 05 RW 02 Kel. Cikokol",
        "nomor antrean 123 dari 450",
        "order 123456789012 belum sampai",
        "resi JP1234567890123",
        "jam 08.30 - 09.00 WIB",
        "tanggal 08-12-2023 pukul 10:00",
        "pkl 10.00 udah tutup",
        "lulusan S1 UI dan S2 ITB",
        "anak saya D3 kebidanan",
        "KB 2 anak cukup",
        "lulus s 1 ya",
        "naik B 20 rb doang",
        "kelas A 12 IPA",
        "Rp 1.500.000.000.000.000",
        "4111111111111111",  # 16 digits, 41 is not a province code, no context word
        "call center 112 dan 021-5551234",  # emergency and landline numbers stay
        "@samsatbanten @dukcapil_kotatangerang #samsatbanten",
        "Pajak naik 5% jadi 2,5 juta",
        "",
    ],
)
def test_leaves_non_personal_numbers(text: str) -> None:
    result = mask_pii(text)
    assert result.text == text
    assert result.kinds == []


def test_result_is_frozen_and_never_holds_values() -> None:
    result = mask_pii("NIK 3603123456789012")
    assert "3603123456789012" not in result.model_dump_json()
    with pytest.raises(ValueError):
        result.text = "x"


def test_a_long_run_named_as_an_account_is_an_account_not_a_nik() -> None:
    assert mask_pii("no rekening 36031234567890123").kinds == [PiiKind.BANK_ACCOUNT]


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        # numbers named by the word before them
        ("NPWP 12.345.678.9-012.345 ga bisa lapor", "NPWP [NPWP] ga bisa lapor"),
        ("npwp sy 123456789012345", "npwp sy [NPWP]"),
        ("transfer ke rek BCA 1234567890 a.n. Siti Aminah", "transfer ke rek BCA [REKENING] a.n. [NAMA]"),
        ("norek BRI 0123-01-012345-50-1 atas nama Ahmad Fauzi", "norek BRI [REKENING] atas nama [NAMA]"),
        ("no BPJS 0001234567890 gabisa dipake", "no BPJS [BPJS] gabisa dipake"),
        ("bpjs ketenagakerjaan no 12345678901 blm cair", "bpjs ketenagakerjaan no [BPJS] blm cair"),
        ("paspor sy C1234567 ketahan", "paspor sy [DOKUMEN] ketahan"),
        ("SIM A 123456789012 hilang", "SIM A [DOKUMEN] hilang"),
        ("NIK 360312345678901 (15 digit typo)", "NIK [NIK] (15 digit typo)"),
        ("NIK 3601 - 1234 - 5678 - 9012", "NIK [NIK]"),
        # names, house numbers, birth dates
        ("nama saya Rahmat Hidayat warga Pandeglang", "nama saya [NAMA] warga Pandeglang"),
        ("Nama: Dewi Lestari, NIK 3601234567890002", "Nama: [NAMA], NIK [NIK]"),
        ("atas nama Hj. Siti Nurhaliza", "atas nama Hj. [NAMA]"),
        ("nama saya budi dari cikupa", "nama saya [NAMA] dari cikupa"),
        ("nama saya budi santoso, NIK saya 3603123456789012", "nama saya [NAMA], NIK saya [NIK]"),
        ("Nama saya Budi santoso tinggal di Cikupa", "Nama saya [NAMA] tinggal di Cikupa"),
        ("nama sy siti nur aisyah", "nama sy [NAMA]"),
        ("a.n. Siti dan a.n. Budi Santoso", "a.n. [NAMA] dan a.n. [NAMA]"),
        (
            "rumah di Jl. Raya Serang No. 12 RT 03/RW 05 Kel. Cikande",
            "rumah di Jl. Raya Serang [ALAMAT] [ALAMAT] Kel. Cikande",
        ),
        ("Perum Griya Asri Blok C5 No. 21, Kec. Serang", "Perum Griya Asri Blok C5 [ALAMAT], Kec. Serang"),
        ("rumah no 12 blok B12 No 3", "rumah [ALAMAT] blok B12 [ALAMAT]"),
        ("lahir 12-05-1985, tolong dibenerin", "lahir [TGL_LAHIR], tolong dibenerin"),
        ("TTL: Serang, 17 Agustus 1990", "TTL: Serang, [TGL_LAHIR]"),
        ("a.n Siti Rp 1.500.000 belum masuk", "a.n [NAMA] Rp 1.500.000 belum masuk"),
        ("Hubungi Bank Mandiri 0812-3456-7890", "Hubungi Bank Mandiri [TELEPON]"),
        # shapes the first passes missed
        ("HP081234567891 WA081234567890", "HP[TELEPON] WA[TELEPON]"),
        ("hp (0812) 3456-7890 atau 0812–3456–7890", "hp [TELEPON] atau [TELEPON]"),
        ("email sy andi [at] gmail [dot] com", "email sy [EMAIL]"),
        ("mail: dewi(at)gmail.com / joko@gmail .com", "mail: [EMAIL] / [EMAIL]"),
        ("email: andi at gmail dot com, dewi[at]yahoo[.]co[.]id", "email: [EMAIL], [EMAIL]"),
        ("hp 081 234 567 890, WA: 081.234.567.890", "hp [TELEPON], WA: [TELEPON]"),
        (
            "token listrik 3603 1234 5678 9012 3456 belum masuk",
            "token listrik 3603 1234 5678 9012 3456 belum masuk",
        ),
        (
            "+62 (812) 3456-7890 / hubungi0812-3456-7890 / wa.me/%2B6281234567890",
            "[TELEPON] / hubungi[TELEPON] / wa.me/[TELEPON]",
        ),
        ("angkot A-1234-UA dan mobil A.1234.BC", "angkot [PLAT] dan mobil [PLAT]"),
    ],
)
def test_masks_the_kinds_citizens_post_when_they_complain(raw: str, masked: str) -> None:
    assert mask_pii(raw).text == masked


@pytest.mark.parametrize(
    "text",
    [
        "pengaduan 0800 1234 5678 bebas pulsa",  # toll-free, not a mobile
        "anggaran Rp 62.812.345.678 dipotong",  # 62… after Rp is money
        "transfer Rp 1.500.000 ke rekening bri",
        "kode TRX0812345678 gagal",
        "Oppo A 78 NFC, Samsung A 55 HP, Redmi K 50 PRO",
        "lulusan D 3 PNS",
        "antrian B 12 C, kios A 12 B, tribun E 12 B, halte T 12 A",
        "banjir di kp. Sukamaju RT 04/RW 02 desa Kragilan",  # a neighbourhood without a house locates a flood
        "atas nama pemerintah kota, a.n. Kepala Dinas",
        "atas nama baik sekolah",
        "pas sekali nama saya sudah dipanggil, nama sy terdaftar kok",
        "anak saya baru lahir 3 hari",
        "@budi_santoso88 ini yg nipu min @polresserang",  # handles stay: accounts posts address
        # numbers a looser phone or account pattern took (a final review)
        "anggaran 850000000 rupiah, ID pelanggan PDAM 8512345678, surat nomor 845/123/2024",
        "facebook.com/groups/851234567/posts/1",
        "rekening BRI tanggal 12.03.2024; Bank BRI buka jam 08.00 - 15.00",
        "Desa Mandiri sejak 2020 2021 2022 2023",
        "nama saya hilang dari DTKS, nama saya ganda",
        "atas nama PT Maju Jaya",
        "tidak jalan, laporan no 1234; antrian di rumah sakit no 125; jalan nomor 1 di Banten paling rusak",
    ],
)
def test_leaves_what_only_looks_personal(text: str) -> None:
    assert mask_pii(text).text == text


def test_email_digits_not_masked_as_phone() -> None:
    result = mask_pii("081234567890@gmail.com")
    assert result.text == "[EMAIL]"
    assert result.kinds == [EMAIL]


def test_fields_beside_the_text_are_masked_except_the_public_identity() -> None:
    from pipeline.enrich.enricher import mask_other_fields
    from schemas.posts import RawPost

    post = RawPost.model_validate(
        {
            "id": "1",
            "platform": "x",
            "text": "hai",
            "created_at": "2026-11-20T08:00:00Z",
            "url": "https://wa.me/6281234567890",
            "author": {
                "id": "u1",
                "handle": "budi_88",
                "name": "Budi 081233334444",
                "bio": "wa 0812-1111-2222",
            },
            "geo": {"place": "Jl. Raya Serang No. 12", "lat": -6.1, "lon": 106.1},
            "metrics": {"likes": 3, "note": "nik 3604123456789012"},
            "quoted": [{"text": "a.n. Siti Aminah"}],
        }
    )
    fields, kinds = mask_other_fields(post)
    assert fields["url"] == "https://wa.me/[TELEPON]"
    assert fields["author"] == {
        "id": "u1",
        "handle": "budi_88",
        "name": "Budi [TELEPON]",  # a display name stays, the WhatsApp number in it does not
        "bio": "wa [TELEPON]",
    }
    assert fields["geo"] == {"place": "Jl. Raya Serang [ALAMAT]", "lat": -6.1, "lon": 106.1}
    assert fields["metrics"]["likes"] == 3 and fields["metrics"]["note"] == "nik [NIK]"
    assert fields["quoted"] == [{"text": "a.n. [NAMA]"}]
    assert kinds == {PiiKind.PHONE, PiiKind.ADDRESS, PiiKind.NIK, PiiKind.NAME}


def test_a_long_field_of_phone_numbers_is_masked_whole_and_amounts_after_rp_stay() -> None:
    """Each phone match looks back a bounded window for "Rp" or a word glued to it (not the whole text before
    it, which made a 160 kB caption of numbers take seconds): every number far into the text is masked, and an
    amount right after "Rp" still is not."""
    text = "wa 081234567890 " * 5000 + "anggaran Rp 62.812.345.678 dipotong, kode TRX0812345678"
    masked = mask_pii(text).text
    assert masked.count("[TELEPON]") == 5000
    assert "081234567890" not in masked
    assert masked.endswith("anggaran Rp 62.812.345.678 dipotong, kode TRX0812345678")


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("hubungi pak Budi\u200b081234567890", "hubungi pak Budi [TELEPON]"),
        ("wa \u0660\u0668\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660", "wa [TELEPON]"),
        ("wa 0\ufe0f\u20e38\ufe0f\u20e31\ufe0f\u20e32\ufe0f\u20e33456 7890", "wa [TELEPON]"),
        ("wa 0812_3456_7890 / 0812--3456--7890", "wa [TELEPON] / [TELEPON]"),
        ("hubungi Budi\u200d081234567890", "hubungi Budi [TELEPON]"),  # a joiner between a letter and a digit
        ("wa 0062 812 3456 7890", "wa [TELEPON]"),
        ("nik 3603/1234/5678/9012", "nik [NIK]"),
        ("nik 3603_1234_5678_9012", "nik [NIK]"),
        ("nama saya Dédé Suryana", "nama saya [NAMA]"),
        ("email \u0430ndi@gm\u0430il.com / andi@gmail\u3002com", "email [EMAIL] / [EMAIL]"),  # Cyrillic а
        ("plat \u0412 1234 \u0425\u0423Z ditilang", "plat [PLAT] ditilang"),  # Cyrillic В, Х, У
    ],
)
def test_obfuscated_numbers_and_names_with_diacritics_are_masked(raw: str, masked: str) -> None:
    """Shapes a hostile-input review found escaping: digits of other scripts and keycaps (folded to ASCII by
    normalisation), a zero-width space gluing a number to a name, separators other than space, dot and dash,
    the 00 international prefix, a name with diacritics (common in Sundanese names), and an address or a
    plate written with look-alike Cyrillic letters."""
    assert mask_pii(normalize_text(raw)).text == masked


@pytest.mark.parametrize(
    "text",
    [
        "antrian nomor 081, 082, 083",
        "total 1,081,234,567 dan Rp2,081,500,000, harga 1.081.234.567",
        "suhu 36,1 36,2 36,3 36,4 36,5 36,6 36,7 36,8",
        "ukuran 36/12/45/67/89/01/23/45",
    ],
)
def test_lists_and_amounts_with_commas_or_slashes_are_not_phones_or_niks(text: str) -> None:
    """Separators added for obfuscated numbers must not take comma-decimal lists or grouped amounts."""
    assert mask_pii(normalize_text(text)).text == text
