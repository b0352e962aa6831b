"""Benchmarks that print numbers (speed and memory are measured here, never asserted in tests)."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.output import make_console
from pipeline.settings import get_settings

app = typer.Typer(help="Measure throughput and memory.", no_args_is_help=True)
console = make_console()


def _sizes(value: str, option: str) -> tuple[int, ...]:
    """Comma-separated counts, each at least 1; anything else is a usage error, not a traceback."""
    try:
        sizes = tuple(int(part) for part in value.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(
            f"{value!r}: expected whole numbers ≥ 1 separated by commas, e.g. 1,8,32", param_hint=option
        )
    return sizes


@app.command(
    "model",
    help="Sentiment path (encoder + sentiment head; the category head and the rules are not timed): "
    "texts/s per backend, batch size and text length; peak memory.",
)
def model(
    model_dir: Path | None = typer.Option(None, "--model", help="model directory (default PANTAU_MODEL_DIR)"),
    batch_sizes: str = typer.Option("1,8,32", help="comma-separated batch sizes"),
    backends: str = typer.Option(
        "fp32,int8,onnx-int8", help="comma-separated backends (the pipeline runs PANTAU_MODEL_BACKEND)"
    ),
    threads: int = typer.Option(2, "--threads", min=1, help="inference threads"),
) -> None:
    from pipeline.bench.model import run_model_bench
    from pipeline.cli.model import _backend

    run_model_bench(
        model_dir or get_settings().model_dir,
        batch_sizes=_sizes(batch_sizes, "--batch-sizes"),
        console=console,
        backends=tuple(_backend(b.strip()) for b in backends.split(",")),
        threads=threads,
    )


@app.command(
    "topics",
    help="Topic discovery: purity and story recall per topic on a labelled multi-story stream "
    "(Indonesian, Sundanese, Javanese-Serang; held-out seeds), then posts/s through the window and the time "
    "of one update at each size.",
)
def topics(
    sizes: str = typer.Option("10000,100000", help="comma-separated window sizes (posts) for the speed part"),
    tuning: bool = typer.Option(
        False, "--tuning", help="score the stream's tuning seeds instead of the held-out ones"
    ),
    quality: bool = typer.Option(True, "--quality/--no-quality", help="score topics on the labelled stream"),
    speed: bool = typer.Option(True, "--speed/--no-speed", help="time discovery on synthetic embeddings"),
) -> None:
    if quality:
        from pipeline.bench.stream import REPORTED_SEEDS, TUNING_SEEDS
        from pipeline.bench.topic_quality import render_quality, run_quality
        from pipeline.enrich.enricher import Enricher

        settings = get_settings()
        with console.status("loading the model, embedding the stream"):
            enricher = Enricher.from_settings(settings)
            results = run_quality(enricher, TUNING_SEEDS if tuning else REPORTED_SEEDS)
        render_quality(console, results)
    if speed:
        from pipeline.bench.topics import run_topics_bench

        run_topics_bench(console, sizes=_sizes(sizes, "--sizes"))


def _rates(value: str) -> tuple[float, ...]:
    """Comma-separated posts/s, each above 0; anything else is a usage error."""
    try:
        rates = tuple(float(part) for part in value.split(","))
    except ValueError:
        rates = ()
    if not rates or min(rates) <= 0:
        raise typer.BadParameter(
            f"{value!r}: expected posts/s above 0 separated by commas, e.g. 40", param_hint="--rate"
        )
    return rates


@app.command(
    "pipeline",
    help="Stream throughput against `pantau classify` on the same posts, and produce → searchable latency "
    "(p50/p95/p99/max) at 25/50/80 % of the measured capacity; medians of --repeat runs. Starts a private "
    "embedded stack unless --running.",
)
def pipeline(
    posts: int = typer.Option(2000, "--posts", min=1, help="posts per classify and stream run"),
    rate: str | None = typer.Option(
        None, "--rate", help="posts/s of the latency runs (comma-separated) instead of 25/50/80 % of capacity"
    ),
    repeat: int = typer.Option(3, "--repeat", min=1, help="runs of each measurement (the median is shown)"),
    duration: float = typer.Option(
        20.0, "--duration", min=1, help="seconds of steady sending per latency run"
    ),
    running: bool = typer.Option(
        False,
        "--running",
        help="measure the running pipeline (`pantau up` or PANTAU_KAFKA_BOOTSTRAP/PANTAU_ES_URL)",
    ),
    as_json: bool = typer.Option(False, "--json", help="the report as JSON on stdout"),
) -> None:
    from pipeline.bench.pipeline import (
        BenchError,
        PipelineBenchConfig,
        private_stack,
        render_report,
        run_pipeline_bench,
    )
    from pipeline.cli.endpoints import running_endpoints
    from pipeline.embedded.process import ServerError

    out = make_console(stderr=True) if as_json else console
    config = PipelineBenchConfig(
        posts=posts, repeat=repeat, duration=duration, rates=_rates(rate) if rate is not None else ()
    )
    settings = get_settings()
    try:
        if running:
            report = run_pipeline_bench(settings, running_endpoints(settings, out), config, out)
        else:
            with private_stack(settings, out) as (local, endpoints):
                report = run_pipeline_bench(local, endpoints, config, out)
    except (BenchError, ServerError) as exc:
        out.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        render_report(report, console)


@app.command(
    "alerts",
    help="Spike detection on a synthetic year of hourly counts per agency: recall, false alerts per agency "
    "per week, median delay (held-out seeds).",
)
def alerts(
    tuning: bool = typer.Option(
        False, "--tuning", help="score the tuning seeds instead of the held-out ones"
    ),
    oracle: bool = typer.Option(
        False,
        "--oracle",
        help="give the decision the generator's true hourly rate as its baseline: the most any "
        "baseline estimate could reach with the same test",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    import json

    from rich.table import Table

    from pipeline.alerts.detect import DetectorConfig
    from pipeline.bench.alerts import HELD_OUT_SEEDS, TUNING_SEEDS, score

    seeds = TUNING_SEEDS if tuning else HELD_OUT_SEEDS
    result = score(seeds, DetectorConfig.from_settings(get_settings()), oracle=oracle)
    if as_json:
        typer.echo(json.dumps(result.__dict__, default=str))
        return
    table = Table(
        ("held-out seeds" if not tuning else "tuning seeds") + (" (oracle baseline)" if oracle else ""),
        "target bursts",
        "recall",
        "false spikes / agency / 4 weeks",
        "median delay (buckets)",
    )
    table.add_row(
        ",".join(map(str, seeds)),
        str(result.target_bursts),
        f"{result.recall:.3f}",
        f"{4 * result.false_per_agency_week:.2f}",
        "-" if result.median_delay is None else f"{result.median_delay:g}",
    )
    console.print(table)
    console.print(
        "detected share by burst size: "
        + ", ".join(f"{m:g}×: {r:.2f}" for m, r in result.recall_by_multiplier.items())
    )
