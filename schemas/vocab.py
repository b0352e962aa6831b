"""Closed vocabularies shared by every message and document.

Kept as ``StrEnum`` so they serialise as plain strings in Kafka, Elasticsearch and JSON Schema.
"""

from enum import StrEnum


class Platform(StrEnum):
    X = "x"
    INSTAGRAM = "instagram"
    FACEBOOK = "facebook"
    TIKTOK = "tiktok"
    YOUTUBE = "youtube"
    NEWS = "news"
    MASTODON = "mastodon"
    OTHER = "other"


class Agency(StrEnum):
    """Canonical ids of Banten public-service agencies (provincial and kab/kota level)."""

    SAMSAT = "samsat"
    DUKCAPIL = "dukcapil"
    DINKES = "dinkes"
    PUSKESMAS = "puskesmas"
    RSUD = "rsud"
    BPBD = "bpbd"
    DAMKAR = "damkar"
    DINDIKBUD = "dindikbud"
    DPUPR = "dpupr"
    DISHUB = "dishub"
    DINSOS = "dinsos"
    DPMPTSP = "dpmptsp"
    DISKOMINFO = "diskominfo"
    PDAM = "pdam"
    SATPOLPP = "satpolpp"
    DISNAKER = "disnaker"
    DLH = "dlh"
    PEMDA = "pemda"


class Region(StrEnum):
    """BPS codes of Banten's kabupaten/kota; ``PROVINCE`` when the whole province is meant."""

    PROVINCE = "3600"
    KAB_PANDEGLANG = "3601"
    KAB_LEBAK = "3602"
    KAB_TANGERANG = "3603"
    KAB_SERANG = "3604"
    KOTA_TANGERANG = "3671"
    KOTA_CILEGON = "3672"
    KOTA_SERANG = "3673"
    KOTA_TANGERANG_SELATAN = "3674"


REGION_NAMES: dict[Region, str] = {
    Region.PROVINCE: "Provinsi Banten",
    Region.KAB_PANDEGLANG: "Kab. Pandeglang",
    Region.KAB_LEBAK: "Kab. Lebak",
    Region.KAB_TANGERANG: "Kab. Tangerang",
    Region.KAB_SERANG: "Kab. Serang",
    Region.KOTA_TANGERANG: "Kota Tangerang",
    Region.KOTA_CILEGON: "Kota Cilegon",
    Region.KOTA_SERANG: "Kota Serang",
    Region.KOTA_TANGERANG_SELATAN: "Kota Tangerang Selatan",
}


class Category(StrEnum):
    ADMINDUK = "adminduk"
    KESEHATAN = "kesehatan"
    PENDIDIKAN = "pendidikan"
    PAJAK_KENDARAAN = "pajak_kendaraan"
    JALAN_INFRASTRUKTUR = "jalan_infrastruktur"
    BENCANA = "bencana"
    AIR_BERSIH = "air_bersih"
    TRANSPORTASI = "transportasi"
    BANSOS = "bansos"
    PERIZINAN = "perizinan"
    KETERTIBAN = "ketertiban"
    LINGKUNGAN_SAMPAH = "lingkungan_sampah"
    KETENAGAKERJAAN = "ketenagakerjaan"
    LAYANAN_DIGITAL = "layanan_digital"
    LAYANAN_UMUM = "layanan_umum"
    BUKAN_LAYANAN = "bukan_layanan"


class SentimentLabel(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class PiiKind(StrEnum):
    NIK = "nik"
    KK = "kk"
    PHONE = "phone"
    EMAIL = "email"
    PLATE = "plate"
    NPWP = "npwp"
    BANK_ACCOUNT = "bank_account"
    BPJS = "bpjs"
    ID_DOCUMENT = "id_document"
    """Passport and driving-licence (SIM) numbers."""
    NAME = "name"
    ADDRESS = "address"
    """House numbers and RT/RW next to a street, not street or place names (those locate complaints)."""
    BIRTH_DATE = "birth_date"
