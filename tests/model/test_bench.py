"""`pantau bench model` (each backend in a spawned process) reports every cell; numbers are not asserted."""

from __future__ import annotations

import io

from rich.console import Console

from pipeline.bench.model import BenchRow, run_model_bench
from pipeline.model.data import DEFAULT_MODEL_DIR


def test_bench_reports_every_cell_of_the_backends_asked_for() -> None:
    out = io.StringIO()
    rows = run_model_bench(
        DEFAULT_MODEL_DIR,
        batch_sizes=(1, 4),
        lengths=("tweet",),
        console=Console(file=out, width=120),
        backends=("onnx-int8",),
        seconds=0.2,
    )
    assert [(r.backend, r.length, r.batch_size) for r in rows] == [
        ("onnx-int8", "tweet", 1),
        ("onnx-int8", "tweet", 4),
    ]
    assert all(isinstance(r, BenchRow) and r.texts_per_s > 0 and r.tokens == 36 for r in rows)
    assert "onnx-int8" in out.getvalue() and "texts/s" in out.getvalue()
