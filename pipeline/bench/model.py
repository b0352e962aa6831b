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


def bench_backend(
    model_dir: Path,
    backend: Backend,
    batch_sizes: Sequence[int],
    lengths: Sequence[str],
    threads: int,
    seconds: float,
) -> list[BenchRow]:
    """Every cell of one backend, in the calling process: its peak RSS is this backend's alone only in a
    fresh process, which is how ``run_model_bench`` calls it."""
    from pipeline.model.sentiment import SentimentModel

    model = SentimentModel.load(model_dir, backend=backend, threads=threads)
    rows: list[BenchRow] = []
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
    return rows


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
    """Predict repeatedly for about ``seconds`` per cell; varied texts so nothing is cached.

    Each backend runs in a fresh process, so its peak RSS does not include the backends before it
    (a torch backend leaves the process near 1 GB; onnx-int8 alone needs about a third of that).
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from rich.console import Console
    from rich.table import Table

    from pipeline.report import progress_bar

    console = console or Console()
    rows: list[BenchRow] = []
    with progress_bar(console) as progress:
        task = progress.add_task("benchmarking", total=len(backends))
        for backend in backends:
            progress.update(task, description=f"benchmarking {backend}")
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                job = pool.submit(bench_backend, model_dir, backend, batch_sizes, lengths, threads, seconds)
                rows += job.result()
            progress.advance(task)
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
