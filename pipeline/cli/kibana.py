"""``pantau kibana``: import the dashboards into a Kibana, or write them out as NDJSON."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(help="Kibana data views, saved searches and dashboards.", no_args_is_help=True)


@app.command(
    "import",
    help="Upload the saved objects (data views, saved searches, dashboards) to Kibana's import API, "
    "overwriting objects with the same ids; prints what Kibana refused and exits 1 if it refused anything.",
)
def import_(
    url: str | None = typer.Option(None, "--url", help="Kibana URL (default: PANTAU_KIBANA_URL)"),
    space: str | None = typer.Option(None, "--space", help="Kibana space id (default: the default space)"),
    file: Path | None = typer.Option(
        None, "--file", exists=True, dir_okay=False, help="NDJSON to upload instead of the built-in objects"
    ),
) -> None:
    from pipeline.kibana.importer import KibanaRefused, import_objects
    from pipeline.kibana.saved_objects import to_ndjson
    from pipeline.settings import get_settings

    settings = get_settings()
    base = url or settings.kibana_url
    if not base:
        typer.echo("error: no Kibana URL: pass --url or set PANTAU_KIBANA_URL", err=True)
        raise typer.Exit(2)
    auth: tuple[str, str] | None = None
    headers: dict[str, str] = {}
    if settings.es_api_key:
        headers["Authorization"] = f"ApiKey {settings.es_api_key.get_secret_value()}"
    elif settings.es_username:
        auth = (settings.es_username, settings.es_password.get_secret_value() if settings.es_password else "")
    ndjson = file.read_bytes() if file else to_ndjson().encode()
    try:
        result = import_objects(base, ndjson, space=space, auth=auth, headers=headers)
    except KibanaRefused as exc:
        typer.echo(f"error: Kibana refused the import: {exc}", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:  # connection refused, DNS, TLS, timeout: one line, not a traceback
        typer.echo(f"error: could not reach Kibana at {base}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"imported {result.success_count} objects into {base}" + (f" (space {space})" if space else "")
    )
    for failure in result.errors:
        typer.echo(f"error: {failure.describe()}", err=True)
    if result.errors or not result.success:
        typer.echo(f"error: Kibana refused {len(result.errors)} objects", err=True)
        raise typer.Exit(1)


@app.command("export", help="Write the saved objects as NDJSON to FILE (- for stdout).")
def export(file: str = typer.Argument(..., help="output file, or - for stdout")) -> None:
    from pipeline.kibana.saved_objects import to_ndjson

    text = to_ndjson()
    if file == "-":
        sys.stdout.write(text)
    else:
        Path(file).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {file}")
