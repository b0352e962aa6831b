"""Throughput and memory of the sentiment model per backend, batch size and text length."""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.model.encoder import Backend

TWEET = "jalan di kec. cikande rusak parah udah 3 bulan, lapor @pemprovbanten tp blm ada tindakan 😡 #banten"
REVIEW = (
    "saya datang ke kantor samsat serang jam delapan pagi untuk perpanjang stnk. antrean sudah panjang "
    "tetapi petugas cukup sigap, loket dibuka tepat waktu dan prosesnya jelas. sayang ruang tunggu panas, "
    "kipas angin mati dan toilet kotor. parkir juga semrawut karena tidak ada petugas yang mengatur. secara "
    "umum pelayanan lebih baik dari tahun lalu, semoga fasilitasnya ikut diperbaiki supaya warga nyaman."
)
TEXTS = {"tweet": TWEET, "review": REVIEW}


@dataclass(frozen=True)
class BenchRow:
    backend: str
    length: str
    tokens: int
    batch_size: int
    texts_per_s: float
    peak_rss_mb: float


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_model_bench(
    model_dir: Path,
    batch_sizes: Sequence[int] = (1, 8, 32),
    lengths: Sequence[str] = ("tweet", "review"),
    console: Console | None = None,
    *,
    backends: Sequence[Backend] = ("fp32",),
    threads: int = 2,
    seconds: float = 3.0,
) -> list[BenchRow]:
    """Predict repeatedly for about ``seconds`` per cell; varied texts so nothing is cached."""
    from rich.console import Console
    from rich.table import Table

    from pipeline.model.sentiment import SentimentModel

    console = console or Console()
    rows: list[BenchRow] = []
    for backend in backends:
        model = SentimentModel.load(model_dir, backend=backend, threads=threads)
        for length in lengths:
            base = TEXTS[length]
            tokens = len(model.tokenizer.encode(model.prefix + base).ids)
            for bs in batch_sizes:
                texts = [f"{base} ({i})" for i in range(bs)]
                model.predict(texts)  # warm-up
                n, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    model.predict(texts)
                    n += bs
                rate = n / (time.perf_counter() - start)
                rows.append(BenchRow(backend, length, min(tokens, model.max_length), bs, rate, peak_rss_mb()))
        del model
    table = Table(title=f"sentiment model throughput ({threads} threads)")
    for col in ("backend", "text", "tokens", "batch", "texts/s", "peak RSS MB"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r.backend,
            r.length,
            str(r.tokens),
            str(r.batch_size),
            f"{r.texts_per_s:.1f}",
            f"{r.peak_rss_mb:.0f}",
        )
    console.print(table)
    return rows
