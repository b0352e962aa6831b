"""A synthetic day of Banten posts with three planted stories, for topic tests and demos.

Real traffic cannot be shipped, so the stories are hand-written phrasings (slang, typos, hashtags) over
a background of one-off complaints about many services and places: the discovery stage must find the
stories and nothing big in the chatter. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from schemas.topics import TopicPost
from schemas.vocab import Agency, Category, Region, SentimentLabel

A, C, R, S = Agency, Category, Region, SentimentLabel


@dataclass(frozen=True)
class Story:
    name: str
    size: int
    peak_hour: float
    spread_hours: float
    phrases: tuple[str, ...]
    agencies: tuple[Agency, ...]
    region: Region
    category: Category


FLOOD = Story(
    name="flood_lebak",
    size=40,
    peak_hour=6.0,
    spread_hours=1.5,
    phrases=(
        "banjir rangkasbitung makin tinggi, air udah sepinggang",
        "sungai cimadur meluap lagi, rumah warga kerendem",
        "warga lebak mengungsi ke masjid gara2 banjir",
        "bpbd lebak evakuasi warga pake perahu karet",
        "banjir di cibadak lebak, jalan ga bisa dilewatin",
        "sungai ciujung naik, rangkasbitung banjir parah",
        "bantuan buat korban banjir lebak belum dateng, logistik kosong",
        "banjir bandang di lebak selatan, jembatan kebawa arus",
        "kampung kami di kalanganyar lebak kebanjiran dari subuh",
        "pengungsi banjir lebak butuh selimut sama makanan",
        "update banjir rangkas: ketinggian air 1 meter lebih",
        "bpbd lebak lambat bgt, warga evakuasi sendiri dari banjir",
        "sekolah di rangkasbitung diliburkan krn banjir",
        "listrik padam di lebak gara2 banjir semaleman",
        "banjir lagiii di lebak, tiap musim hujan gini terus",
        "posko pengungsian banjir di rangkasbitung penuh",
        "warga cimarga lebak kebanjiran, air masuk rumah",
        "jalur rangkasbitung pandeglang putus kena banjir",
        "cimadur meluap, sawah warga lebak terendam semua",
        "banjir lebak hari ini parah, ribuan warga ngungsi",
    ),
    agencies=(A.BPBD,),
    region=R.KAB_LEBAK,
    category=C.BENCANA,
)

KTP_QUEUE = Story(
    name="ktp_queue_tangerang",
    size=30,
    peak_hour=9.5,
    spread_hours=1.2,
    phrases=(
        "antrean ktp di dukcapil kota tangerang panjang bgt dari subuh",
        "ngantri rekam e-ktp di disdukcapil tangerang udh 5 jam belum dipanggil",
        "dukcapil kota tangerang nomor antrean habis jam 8 pagi",
        "bikin ktp el di dukcapil tangerang harus dateng jam 4 pagi biar dapet antrean",
        "blanko ktp habis, antre di dukcapil tangerang sia2",
        "antrian e-ktp di dukcapil kota tangerang mengular sampe parkiran",
        "petugas dukcapil tangerang cuma 2 loket buka, antrean ktp numpuk",
        "udah antre dari pagi, ktp ga jadi jadi, dukcapil kota tangerang gimana sih",
        "cetak ktp di dukcapil tangerang antre seharian",
        "kapan sih antrean online dukcapil tangerang bener, ktp gue belum jadi",
        "ambil ktp elektronik di disdukcapil kota tangerang antre lama banget",
        "warga numpuk di kantor dukcapil tangerang buat perekaman ktp",
        "antri ktp di dukcapil tangerang kayak antri sembako",
        "sistem antrean dukcapil kota tangerang error, warga nunggu ktp berjam2",
        "anak baru 17 th rekam ktp di dukcapil tangerang, antrenya ampun",
        "loket ktp dukcapil kota tangerang tutup jam 12 padahal antrean masih panjang",
    ),
    agencies=(A.DUKCAPIL,),
    region=R.KOTA_TANGERANG,
    category=C.ADMINDUK,
)

STREETLIGHTS = Story(
    name="pju_cilegon",
    size=25,
    peak_hour=20.5,
    spread_hours=1.3,
    phrases=(
        "lampu jalan di cilegon mati semua, gelap gulita",
        "pju di jalan raya merak cilegon mati udah seminggu",
        "lampu pju di ciwandan cilegon padam, rawan begal",
        "jalan lingkar selatan cilegon gelap, lampu jalannya mati",
        "dishub cilegon tolong lampu pju depan pci mati",
        "pju mati di cibeber cilegon, motor jatoh krn lubang ga keliatan",
        "malem lewat jalan cilegon serem, lampu jalan ga nyala",
        "lampu penerangan jalan umum di cilegon banyak yg mati",
        "udah lapor lampu jalan mati di jombang cilegon tapi belum dibenerin",
        "jalan sa tirtayasa cilegon gelap banget, lampu pju padam",
        "lampu jalan mati bikin rawan kecelakaan di cilegon",
        "kapan pju di grogol cilegon diperbaiki? gelap tiap malem",
        "tiang lampu pju di cilegon nyala cuma sebagian",
        "lampu jalan di pulomerak cilegon mati total",
        "pemkot cilegon tolong benerin lampu jalan yg mati",
        "gelap bgt jalan cilegon arah anyer, pju mati",
    ),
    agencies=(A.DISHUB,),
    region=R.KOTA_CILEGON,
    category=C.JALAN_INFRASTRUKTUR,
)

STORIES: tuple[Story, ...] = (FLOOD, KTP_QUEUE, STREETLIGHTS)

_OPENERS = ("", "", "", "guys ", "min, ", "woy ", "parah, ", "info: ", "lapor, ", "ya allah ")
_CLOSERS = ("", "", "", " 😡", " 🙏", " tolong dibantu", " #banten", " gmn nih", " ...", "!!", " pls")

# Background themes: one-off complaints and questions about many services, each phrased several ways so
# that no theme repeats a sentence more than once or twice. ``{p}`` is a place.
_CHATTER: tuple[tuple[Category, Agency, tuple[str, ...]], ...] = (
    (
        C.PAJAK_KENDARAAN,
        A.SAMSAT,
        (
            "bayar pajak motor di samsat {p} kok sistemnya offline",
            "pajak mobil telat sebulan dendanya berapa ya di {p}",
            "antre bayar stnk tahunan di {p} cuma 10 menit, mantap",
            "samsat {p} minta fotokopi ktp padahal udah online",
        ),
    ),
    (
        C.PAJAK_KENDARAAN,
        A.SAMSAT,
        (
            "samsat keliling {p} hari ini buka ga?",
            "mutasi kendaraan di {p} ribet, berkas bolak balik",
            "balik nama bpkb di {p} makan waktu sebulan",
            "pemutihan pajak kendaraan di {p} sampe kapan",
        ),
    ),
    (
        C.BANSOS,
        A.DINSOS,
        (
            "bansos pkh di {p} belum cair padahal udah terdaftar",
            "bantuan sembako di {p} dipotong oknum rt",
            "penerima bpnt di {p} salah sasaran",
            "kartu sembako warga {p} saldonya nol",
        ),
    ),
    (
        C.BANSOS,
        A.DINSOS,
        (
            "blt dana desa {p} kapan turun ya",
            "data dtks di {p} ngaco, orang mampu dapet bansos",
            "cek nama penerima bantuan sosial {p} dimana",
            "rumah tidak layak huni di {p} ga pernah disurvei",
        ),
    ),
    (
        C.PENDIDIKAN,
        A.DINDIKBUD,
        (
            "ppdb zonasi {p} ga adil, anak saya ga keterima",
            "sekolah negeri di {p} minta uang seragam mahal",
            "jalur afirmasi ppdb {p} kuotanya dikit",
            "pungutan uang gedung smp {p} bikin pusing",
        ),
    ),
    (
        C.PENDIDIKAN,
        A.DINDIKBUD,
        (
            "atap kelas sd di {p} bocor, murid belajar di teras",
            "guru honorer di {p} gajinya telat 3 bulan",
            "meja kursi smk {p} udah reyot",
            "perpustakaan sekolah di {p} kosong bukunya",
        ),
    ),
    (
        C.LINGKUNGAN_SAMPAH,
        A.DLH,
        (
            "sampah numpuk di pinggir jalan {p} baunya kemana mana",
            "truk sampah ga lewat seminggu di {p}",
            "iuran kebersihan {p} naik tapi sampah tetep numpuk",
            "kontainer sampah depan pasar {p} meluber",
        ),
    ),
    (
        C.LINGKUNGAN_SAMPAH,
        A.DLH,
        (
            "tpa di {p} penuh, asap pembakaran kemana mana",
            "sungai di {p} item penuh limbah pabrik",
            "bank sampah di {p} keren, warga semangat",
            "debu proyek tol di {p} bikin batuk",
        ),
    ),
    (
        C.TRANSPORTASI,
        A.DISHUB,
        (
            "parkir liar di {p} bikin macet tiap sore",
            "tukang parkir minimarket {p} maksa bayar",
            "bus trans banten rute {p} jarang lewat",
            "truk odol lewat tengah kota {p} siang hari",
        ),
    ),
    (
        C.TRANSPORTASI,
        A.DISHUB,
        (
            "angkot ngetem sembarangan di {p}",
            "uji kir di {p} katanya bisa nembak",
            "halte di {p} dipake pedagang",
            "rambu dilarang parkir {p} ketutup pohon",
        ),
    ),
    (
        C.KESEHATAN,
        A.PUSKESMAS,
        (
            "puskesmas {p} tutup jam 12, pasien disuruh balik besok",
            "dokter di puskesmas {p} jutek bgt",
            "rujukan bpjs dari puskesmas {p} susah",
            "bidan puskesmas {p} ramah, makasih bu",
        ),
    ),
    (
        C.KESEHATAN,
        A.RSUD,
        (
            "rsud {p} nolak pasien bpjs alasannya kamar penuh",
            "obat di rsud {p} kosong, disuruh beli di luar",
            "igd rsud {p} nunggu dokter 4 jam",
            "parkiran rsud {p} semrawut",
        ),
    ),
    (
        C.KESEHATAN,
        A.DINKES,
        (
            "fogging dbd di {p} kapan? udah banyak yg kena",
            "posyandu di {p} kehabisan vaksin anak",
            "kasus diare anak di {p} lagi naik",
            "klinik gigi gratis di {p} beneran ada?",
        ),
    ),
    (
        C.AIR_BERSIH,
        A.PDAM,
        (
            "air pdam di {p} mati dari kemarin",
            "air pdam {p} keruh kayak kopi susu",
            "meteran pdam rumah di {p} muter terus padahal ga dipake",
            "pdam {p} gercep benerin pipa, salut",
        ),
    ),
    (
        C.LAYANAN_UMUM,
        A.PEMDA,
        (
            "tagihan pbb rumah di {p} naik dua kali lipat",
            "sppt pbb {p} belum dibagi sampe sekarang",
            "bayar pbb online {p} gagal terus",
            "diskon pbb {p} lumayan, makasih pemda",
        ),
    ),
    (
        C.JALAN_INFRASTRUKTUR,
        A.DPUPR,
        (
            "jalan berlubang di {p}, udah makan korban",
            "jalan provinsi di {p} kayak kubangan kerbau",
            "aspal baru di {p} udah ngelupas",
            "tambal sulam jalan {p} asal asalan",
        ),
    ),
    (
        C.JALAN_INFRASTRUKTUR,
        A.DPUPR,
        (
            "jembatan di {p} retak, takut ambruk",
            "drainase di {p} mampet, tiap hujan genangan",
            "proyek betonisasi jalan di {p} mangkrak",
            "trotoar baru di {p} udah ancur lagi",
        ),
    ),
    (
        C.PERIZINAN,
        A.DPMPTSP,
        (
            "ngurus nib di oss buat usaha di {p} error terus",
            "izin pbg di {p} prosesnya berbulan bulan",
            "izin reklame di {p} mahal amat",
            "sertifikat halal gratis buat umkm {p} gimana daftarnya",
        ),
    ),
    (
        C.KETERTIBAN,
        A.SATPOLPP,
        (
            "pkl nutup trotoar di {p}, satpol pp diem aja",
            "pungli di pasar {p}, preman minta jatah",
            "bangunan liar di bantaran kali {p} dibiarkan",
            "spanduk kampanye masih nempel di {p}",
        ),
    ),
    (
        C.KETERTIBAN,
        A.SATPOLPP,
        (
            "balap liar tiap malem minggu di {p}",
            "tempat hiburan malam di {p} buka sampe subuh",
            "pengamen maksa di perempatan {p}",
            "gerobak pedagang ditinggal di badan jalan {p}",
        ),
    ),
    (
        C.KETENAGAKERJAAN,
        A.DISNAKER,
        (
            "loker di {p} minta duit dulu, penipuan",
            "pabrik di {p} phk karyawan tanpa pesangon",
            "umr {p} segitu tapi kontrak 3 bulanan terus",
            "pelatihan kerja blk {p} gratis, recommended",
        ),
    ),
    (
        C.KETENAGAKERJAAN,
        A.DISNAKER,
        (
            "kartu kuning ak1 di disnaker {p} syaratnya apa aja",
            "bursa kerja {p} cuma formalitas",
            "thr buruh di {p} belum dibayar",
            "agen tki ilegal di {p} masih berkeliaran",
        ),
    ),
    (
        C.LAYANAN_DIGITAL,
        A.DISKOMINFO,
        (
            "website pemda {p} down terus",
            "aplikasi layanan online {p} ga bisa login",
            "wifi gratis di taman {p} ga pernah nyambung",
            "sinyal internet di desa {p} susah bgt",
        ),
    ),
    (
        C.LAYANAN_DIGITAL,
        A.DISKOMINFO,
        (
            "cctv kota {p} banyak yang mati",
            "akun medsos pemkot {p} ga pernah bales dm",
            "form pengaduan online {p} ga ada tanggapan",
            "qr retribusi di {p} gagal scan",
        ),
    ),
    (
        C.LAYANAN_UMUM,
        A.PEMDA,
        (
            "pelayanan di kantor kecamatan {p} lelet",
            "pegawai kelurahan {p} main hp pas jam kerja",
            "surat keterangan tidak mampu di {p} dipersulit",
            "pasar tradisional {p} becek dan kumuh",
        ),
    ),
    (
        C.LAYANAN_UMUM,
        A.PEMDA,
        (
            "alun alun {p} sekarang rapi, mantap",
            "taman kota {p} bersih, makasih petugas",
            "gedung olahraga {p} dibiarin rusak",
            "mal pelayanan publik {p} nyaman dan cepet",
        ),
    ),
    (
        C.ADMINDUK,
        A.DUKCAPIL,
        (
            "akta kelahiran anak di {p} salah nama, gimana benerinnya",
            "kk baru di {p} belum jadi sebulan",
            "surat pindah domisili ke {p} syaratnya apa",
            "ikd identitas digital {p} gagal aktivasi",
        ),
    ),
    (
        C.ADMINDUK,
        A.DUKCAPIL,
        (
            "akta kematian bapak di {p} belum keluar",
            "nama di kartu keluarga {p} typo",
            "layanan jemput bola adminduk {p} mantap",
            "data nik ganda di {p} bikin bpjs nonaktif",
        ),
    ),
    (
        C.BENCANA,
        A.DAMKAR,
        (
            "kebakaran gudang di {p}, damkar telat dateng",
            "damkar {p} sigap evakuasi sarang tawon, makasih",
            "hidran di {p} ga ada airnya",
            "korsleting listrik rumah di {p}, untung damkar cepet",
        ),
    ),
    (
        C.BENCANA,
        A.BPBD,
        (
            "pohon tumbang di jalan {p} belum disingkirin",
            "longsor kecil di tebing {p}, warga was was",
            "angin kencang rusak atap rumah di {p}",
            "simulasi gempa di sekolah {p} bagus",
        ),
    ),
    (
        C.TRANSPORTASI,
        A.DISHUB,
        (
            "lampu merah di perempatan {p} mati, macet total",
            "halte bus di {p} rusak ga diurus",
            "zebra cross depan sekolah {p} udah pudar",
            "jembatan penyeberangan {p} karatan",
        ),
    ),
    (
        C.KESEHATAN,
        A.DINKES,
        (
            "stunting di {p} masih tinggi, programnya mana",
            "ambulans desa {p} ga ada sopirnya",
            "harga obat di apotek {p} mahal",
            "penyuluhan gizi ibu hamil di {p} bermanfaat",
        ),
    ),
    (
        C.PENDIDIKAN,
        A.DINDIKBUD,
        (
            "beasiswa pip anak saya di {p} belum cair",
            "kuota kip kuliah {p} dibagi ke yang kenal",
            "ijazah ditahan sekolah swasta {p} karena nunggak",
            "bus sekolah gratis {p} sangat membantu",
        ),
    ),
    (
        C.BANSOS,
        A.DINSOS,
        (
            "odgj berkeliaran di {p}, dinsos tolong ditangani",
            "panti jompo di {p} butuh bantuan",
            "anak jalanan di perempatan {p} makin banyak",
            "bantuan disabilitas di {p} ga merata",
        ),
    ),
    (
        C.PERIZINAN,
        A.DPMPTSP,
        (
            "izin keramaian hajatan di {p} ribet",
            "sertifikat tanah di {p} diurus bertahun tahun",
            "izin usaha mikro {p} sekarang gampang",
            "retribusi pedagang pasar {p} ga jelas",
        ),
    ),
    (
        C.LAYANAN_UMUM,
        A.PEMDA,
        (
            "rusunawa {p} atapnya bocor ga dibenerin",
            "sewa rusun {p} naik padahal fasilitas rusak",
            "lift rusun {p} mati, lansia naik tangga",
            "pendaftaran rusun {p} antre bertahun tahun",
        ),
    ),
    (
        C.LAYANAN_UMUM,
        A.PEMDA,
        (
            "pemakaman umum {p} penuh",
            "toilet umum terminal {p} jorok",
            "kantor desa {p} tutup pas jam kerja",
            "pelayanan kecamatan {p} sekarang cepet",
        ),
    ),
    (
        C.LINGKUNGAN_SAMPAH,
        A.DLH,
        (
            "pohon peneduh jalan {p} ditebang",
            "pencemaran udara pabrik di {p} parah",
            "kali di {p} dangkal penuh sedimen",
            "gerakan tanam pohon di {p} keren",
        ),
    ),
    (
        C.KETENAGAKERJAAN,
        A.DISNAKER,
        (
            "lowongan pabrik {p} syaratnya aneh",
            "pekerja harian di {p} ga dapet bpjs tk",
            "magang di {p} ga digaji",
            "job fair {p} rame banget",
        ),
    ),
    (
        C.JALAN_INFRASTRUKTUR,
        A.DPUPR,
        (
            "saluran irigasi sawah di {p} jebol",
            "tanggul kali di {p} retak",
            "gang sempit di {p} belum dicor",
            "jalan desa {p} akhirnya diaspal",
        ),
    ),
)

# place name → region (kab/kota) it belongs to
_PLACES: dict[str, Region] = {
    "serang": R.KOTA_SERANG, "ciruas": R.KAB_SERANG, "kramatwatu": R.KAB_SERANG, "anyer": R.KAB_SERANG,
    "pandeglang": R.KAB_PANDEGLANG, "labuan": R.KAB_PANDEGLANG, "menes": R.KAB_PANDEGLANG,
    "malingping": R.KAB_LEBAK, "bayah": R.KAB_LEBAK, "pamulang": R.KOTA_TANGERANG_SELATAN,
    "ciputat": R.KOTA_TANGERANG_SELATAN, "bsd": R.KOTA_TANGERANG_SELATAN, "balaraja": R.KAB_TANGERANG,
    "tigaraksa": R.KAB_TANGERANG, "cikupa": R.KAB_TANGERANG, "ciledug": R.KOTA_TANGERANG,
    "karawaci": R.KOTA_TANGERANG, "merak": R.KOTA_CILEGON, "cipocok": R.KOTA_SERANG,
    "pasar kemis": R.KAB_TANGERANG,
}  # fmt: skip

_SENTIMENTS = (S.NEGATIVE,) * 7 + (S.NEUTRAL,) * 2 + (S.POSITIVE,)


def _typo(text: str, rng: random.Random) -> str:
    """Drop or double one letter, as thumbs do."""
    idx = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(idx) < 8:
        return text
    i = rng.choice(idx[3:])
    return text[:i] + text[i + 1 :] if rng.random() < 0.5 else text[:i] + text[i] + text[i:]


def _decorate(core: str, rng: random.Random) -> str:
    text = rng.choice(_OPENERS) + core + rng.choice(_CLOSERS)
    if rng.random() < 0.25:
        text = _typo(text, rng)
    if rng.random() < 0.15:
        text = text.capitalize()
    return text


def _chatter_text(template: str, place: str, rng: random.Random) -> str:
    return _decorate(template.format(p=place), rng)


def _story_time(story: Story, start: datetime, rng: random.Random) -> datetime:
    hour = min(max(rng.gauss(story.peak_hour, story.spread_hours), 0.0), 23.99)
    return start + timedelta(hours=hour)


def synthetic_day(seed: int = 0, start: datetime | None = None, *, chatter: int = 300) -> list[TopicPost]:
    """Story posts (keys ``x:<story>-<n>``) and chatter (``x:chat-<n>``), sorted by time."""
    rng = random.Random(seed)
    start = start or datetime(2025, 1, 15, tzinfo=UTC)
    posts: list[TopicPost] = []
    seen: set[str] = set()

    def unique(make: Callable[[], str]) -> str:
        """Redraw decorations until the text is new (retweets are not what this day is about)."""
        text = make()
        for _ in range(50):
            if text not in seen:
                break
            text = make()
        seen.add(text)
        return text

    for story in STORIES:
        phrases = list(story.phrases)
        rng.shuffle(phrases)
        for n in range(story.size):
            # every phrasing at least once, then repeats with other decorations
            core = phrases[n] if n < len(phrases) else rng.choice(phrases)
            text = unique(partial(_decorate, core, rng))
            posts.append(
                TopicPost(
                    key=f"x:{story.name}-{n}",
                    created_at=_story_time(story, start, rng),
                    text=text,
                    agencies=list(story.agencies),
                    region=story.region,
                    sentiment=rng.choice(_SENTIMENTS),
                    category=story.category,
                )
            )
    places = list(_PLACES)
    # theme and phrasing walk round-robin (phrasing shuffled per theme), places at random
    phrasings = [rng.sample(templates, len(templates)) for _, _, templates in _CHATTER]
    for n in range(chatter):
        theme = n % len(_CHATTER)
        category, agency, _ = _CHATTER[theme]
        template = phrasings[theme][(n // len(_CHATTER)) % len(phrasings[theme])]
        place = rng.choice(places)
        text = unique(partial(_chatter_text, template, place, rng))
        posts.append(
            TopicPost(
                key=f"x:chat-{n}",
                created_at=start + timedelta(seconds=rng.uniform(0, 86_399)),
                text=text,
                agencies=[agency],
                region=_PLACES[place],
                sentiment=rng.choice(_SENTIMENTS),
                category=category,
            )
        )
    posts.sort(key=lambda p: (p.created_at, p.key))
    return posts


def story_of(key: str) -> str | None:
    """The planted story a synthetic key belongs to, ``None`` for chatter."""
    name = key.removeprefix("x:").rsplit("-", 1)[0]
    return name if name in {s.name for s in STORIES} else None
