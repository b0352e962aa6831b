"""``pantau alerts`` (list, dry-run the rules over history, silences) and ``pantau subscribers``."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.console import Console

from pipeline.cli.topics import parse_duration
from pipeline.settings import Settings, get_settings
from pipeline.tables import print_table

console = Console(width=None if Console().is_terminal else 200)
alerts_app = typer.Typer(help="Alerts: what fired, dry runs of the rules, silences.", no_args_is_help=True)
subscribers_app = typer.Typer(help="Alert subscribers from PANTAU_ALERTS_FILE.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(subscribers_app, name="subscribers")


def _es_url(settings: Settings) -> str:
    from pipeline.cli.endpoints import running_endpoints

    return running_endpoints(settings, console).elasticsearch


@alerts_app.command("list", help="Alerts raised in the last --since (latest revision of each), newest first.")
def list_alerts(
    since: str = typer.Option("24h", "--since", help="e.g. 90m, 24h, 7d (when the alert was raised)"),
    kind: str | None = typer.Option(
        None, "--kind", help="spike, negative_surge, emergency, emerging_topic, silence"
    ),
    as_json: bool = typer.Option(False, "--json", help="one Alert JSON per line"),
) -> None:
    from pipeline.alerts.report import query_alerts, render_alerts
    from pipeline.sinks.elasticsearch import sync_client

    settings = get_settings()
    window = parse_duration(since)
    es = sync_client(settings, _es_url(settings))
    try:
        alerts = query_alerts(es, settings.alerts_index, datetime.now(UTC) - window, kind)
    finally:
        es.close()
    if as_json:
        for alert in alerts:
            sys.stdout.write(alert.model_dump_json() + "\n")
        return
    if not alerts:
        console.print(f"no alerts in the last {since}")
        return
    render_alerts(console, alerts)


@alerts_app.command(
    "test-rule", help="Dry run over indexed posts: what would have fired, when and why. Sends nothing."
)
def test_rule(
    since: str = typer.Option(
        "7d", "--since", help="judge posts of the last --since (the baseline before it is read too)"
    ),
    as_json: bool = typer.Option(False, "--json", help="one Alert JSON per line"),
) -> None:
    from elasticsearch import NotFoundError

    from pipeline.alerts.detect import AlertDetector, AlertInput, DetectorConfig, seen_from_document
    from pipeline.sinks.elasticsearch import sync_client
    from pipeline.stages.records import Record

    settings = get_settings()
    config = DetectorConfig.from_settings(settings)
    window = parse_duration(since)
    now = datetime.now(UTC)
    start = now - window
    history_from = start - timedelta(days=config.baseline_days)
    es = sync_client(settings, _es_url(settings))
    detector = AlertDetector(config, settings.kibana_url, settings.index_alias)
    detector.restored = True
    fired = []
    try:
        body = {"range": {"@timestamp": {"gte": history_from.isoformat(), "lte": now.isoformat()}}}
        after: list[Any] | None = None
        while True:
            page = es.search(
                index=settings.index_alias,
                query=body,
                size=1000,
                sort=[{"@timestamp": "asc"}, {"post_id": "asc"}],
                search_after=after,
            )["hits"]["hits"]
            if not page:
                break
            after = page[-1]["sort"]
            for hit in page:
                seen = seen_from_document(hit["_source"])
                if seen is None:
                    continue
                record = Record(
                    "test-rule", 0, 0, seen.key.encode(), AlertInput(post=seen).model_dump_json().encode()
                )
                for alert in detector.add([record], seen.created_at).alerts:
                    if alert.window_end >= start:
                        fired.append(alert)
    except NotFoundError:
        pass
    finally:
        es.close()
    if as_json:
        for alert in fired:
            sys.stdout.write(alert.model_dump_json() + "\n")
        return
    if not fired:
        console.print(f"no alert would have fired in the last {since} (nothing was sent)")
        return
    rows = [
        (f"{a.window_start:%Y-%m-%d %H:%M}", a.kind.value, a.severity.value, a.status.value, a.key, a.summary)
        for a in fired
    ]
    print_table(console, ("when (UTC)", "kind", "severity", "status", "key", "why"), rows)
    console.print(f"{len(fired)} alert states would have been raised; nothing was sent (dry run)")


@alerts_app.command(
    "silence", help="Send no notification for matching alerts for a while (they are still indexed)."
)
def silence(
    agency: str | None = typer.Option(None, "--agency", help="agency id, e.g. pdam"),
    region: str | None = typer.Option(None, "--region", help="BPS code, e.g. 3602"),
    kind: str | None = typer.Option(None, "--kind", help="alert kind"),
    duration: str = typer.Option("4h", "--for", help="how long, e.g. 30m, 4h, 2d"),
    reason: str | None = typer.Option(None, "--reason", help="why (shown by `alerts silences`)"),
) -> None:
    from pydantic import ValidationError

    from pipeline.alerts.store import AlertStore, Silence

    if not (agency or region or kind):
        console.print("[red]error:[/red] give at least one of --agency, --region, --kind")
        raise typer.Exit(2)
    settings = get_settings()
    now = datetime.now(UTC)
    try:
        entry = Silence(
            id=Silence.new_id(),
            agency=agency,
            region=region,
            kind=kind,
            starts_at=now,
            ends_at=now + parse_duration(duration),
            reason=reason,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        console.print(f"[red]error:[/red] --{first['loc'][0]}: {first['msg']}")
        raise typer.Exit(2) from None
    store = AlertStore(settings, url=_es_url(settings))

    async def add() -> None:
        try:
            await store.add_silence(entry)
        finally:
            await store.close()

    asyncio.run(add())
    console.print(f"{entry.id}: silenced {entry.describe()} until {entry.ends_at:%Y-%m-%d %H:%M} UTC")


@alerts_app.command("silences", help="Silences in force (and how long they last).")
def silences() -> None:
    from pipeline.alerts.store import AlertStore

    settings = get_settings()
    store = AlertStore(settings, url=_es_url(settings))

    async def read() -> list[Any]:
        try:
            return await store.silences()
        finally:
            await store.close()

    now = datetime.now(UTC)
    found = [s for s in asyncio.run(read()) if s.ends_at > now]
    if not found:
        console.print("no silences in force")
        return
    rows = [(s.id, s.describe(), f"{s.ends_at:%Y-%m-%d %H:%M}", s.reason or "") for s in found]
    print_table(console, ("id", "matches", "until (UTC)", "reason"), rows)


@alerts_app.command("unsilence", help="End a silence now.")
def unsilence(silence_id: str = typer.Argument(..., help="the id `alerts silence` printed")) -> None:
    from pipeline.alerts.store import AlertStore

    settings = get_settings()
    store = AlertStore(settings, url=_es_url(settings))

    async def remove() -> bool:
        try:
            return await store.remove_silence(silence_id)
        finally:
            await store.close()

    if not asyncio.run(remove()):
        console.print(f"[red]error:[/red] no silence {silence_id}")
        raise typer.Exit(2)
    console.print(f"{silence_id}: removed")


def _subscribers(settings: Settings) -> Any:
    from pipeline.alerts.subscribers import SubscribersError, load_subscribers

    if settings.alerts_file is None:
        console.print("[red]error:[/red] PANTAU_ALERTS_FILE is not set")
        raise typer.Exit(2)
    try:
        return load_subscribers(settings.alerts_file)
    except SubscribersError as exc:
        more = f" (and {len(exc.lines) - 1} more)" if len(exc.lines) > 1 else ""
        sys.stderr.write(f"error: {exc.lines[0]}{more}\n")
        raise typer.Exit(2) from None


@subscribers_app.command("list", help="Subscribers in PANTAU_ALERTS_FILE: channel, what they match, mode.")
def list_subscribers(as_json: bool = typer.Option(False, "--json")) -> None:
    settings = get_settings()
    loaded = _subscribers(settings)
    if as_json:
        for sub in loaded.subscribers:
            sys.stdout.write(
                json.dumps({"name": sub.name, "channel": sub.channel, "mode": sub.mode, "lang": sub.lang})
                + "\n"
            )
        return
    rows = []
    for sub in loaded.subscribers:
        match = sub.match.model_dump(mode="json", exclude_none=True)
        text = ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in match.items())
        mode = f"digest at {sub.digest_at}" if sub.mode == "digest" else "realtime"
        if sub.brief is not None:
            mode += f"; brief {sub.brief.every} {sub.brief.at}"
        resolved = "yes" if sub.resolved else "no"
        rows.append((sub.name, sub.channel, text, mode, sub.quiet_hours or "", sub.lang, resolved))
    print_table(console, ("name", "channel", "match", "mode", "quiet hours", "lang", "resolved"), rows)


@subscribers_app.command("test", help="Send NAME a clearly marked test alert now (no grouping, no log).")
def test_subscriber(name: str = typer.Argument(..., help="subscriber name")) -> None:
    from pipeline.alerts.channels import SendError
    from pipeline.alerts.delivery import send_test
    from schemas.alerts import Alert, AlertKind, Severity, alert_id
    from schemas.vocab import Region

    settings = get_settings()
    loaded = _subscribers(settings)
    sub = loaded.get(name)
    if sub is None:
        console.print(f"[red]error:[/red] no subscriber {name!r} in {settings.alerts_file}")
        raise typer.Exit(2)
    now = datetime.now(UTC)
    alert = Alert(
        id=alert_id("test:" + name, now),
        key=f"test:subscriber={name}",
        kind=AlertKind.EMERGENCY,
        severity=Severity.INFO,
        region=Region.PROVINCE,
        window_start=now,
        window_end=now,
        count=0,
        expected=0,
        summary="Ini pesan uji dari Pantau Banten; tidak ada kejadian sungguhan.",
        raised_at=now,
        test=True,
    )
    try:
        asyncio.run(send_test(settings, sub, alert))
    except SendError as exc:
        console.print(f"[red]error:[/red] {name} ({sub.channel}): {exc.reason}")
        raise typer.Exit(1) from None
    console.print(f"test alert sent to {name} ({sub.channel})")
