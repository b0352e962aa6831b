"""Every `pantau` command as a script runs it: output piped, a narrow COLUMNS. Nothing is coloured, no
message is wrapped, and results are plain columns or JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer.main

from pipeline.cli import app
from pipeline.model.category import CATEGORIES
from pipeline.settings import REPO_ROOT
from pipeline.tracking import wait_processed
from tests.integration.conftest import Pipeline, make_post, pantau

NARROW = {"COLUMNS": "40"}
ESCAPES = re.compile(r"\x1b\[")
BOXES = re.compile(r"[─│╭╮╰╯┃━┏┓┗┛]")
COSTLY = {
    "pantau demo": "starts its own stack and streams the sample",
    "pantau up": "the session's stack is up already (`status` reads what it reports)",
    "pantau down": "would stop the session's stack (the fixture's teardown runs it)",
    "pantau worker": "runs until stopped (the session's worker is one)",
    "pantau model build": "downloads and converts the encoder",
    "pantau model train": "trains for minutes",
    "pantau model export": "exports and quantises the encoder",
    "pantau bench model": "benchmarks for minutes",
    "pantau bench topics": "benchmarks for minutes",
    "pantau bench pipeline": "starts its own stack",
    "pantau bench alerts": "benchmarks for minutes",
    "pantau alerts silence": "changes who is paged (test_alerts.py silences and unsilences)",
    "pantau alerts unsilence": "changes who is paged (test_alerts.py silences and unsilences)",
    "pantau subscribers test": "sends to a subscriber (test_alerts.py)",
    **{
        f"pantau ingest {name}": "asks a platform's API (test_ingest.py runs it against a stand-in)"
        for name in ("x", "mastodon", "rss", "youtube", "facebook", "instagram")
    },
    "pantau ingest serve": "serves until stopped (test_ingest.py)",
    "pantau ingest all": "runs the connectors until stopped (test_ingest.py)",
}


def commands() -> list[str]:
    group = typer.main.get_group(app)
    found = []
    for name, command in group.commands.items():
        sub = getattr(command, "commands", None)
        found += [f"pantau {name} {child}" for child in sub] if sub else [f"pantau {name}"]
    return found


def run_piped(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = pantau(*args, env={**NARROW, **(env or {})})
    both = result.stdout + result.stderr
    assert not ESCAPES.search(both), f"escape codes from {args}: {both!r}"
    assert not BOXES.search(both), f"a drawn table or box from {args}: {both}"
    return result.returncode, result.stdout, result.stderr


def test_every_command_writes_plain_lines_when_piped(pipeline: Pipeline, tmp_path: Path) -> None:
    ran: set[str] = set()
    settings = pipeline.settings
    bad = {"id": "bad id", "platform": "myspace", "text": "x", "created_at": "kemarin sore"}
    good = make_post("Samsat Ciruas antre panjang banget dari subuh, sistem offline")
    path = tmp_path / "posts.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")

    code, _, err = run_piped("produce", str(path))
    ran.add("pantau produce")
    assert code == 3
    (line,) = [line for line in err.splitlines() if ":2: not sent:" in line]  # one line, however long
    assert len(line) > 3 * int(NARROW["COLUMNS"]) and "id:" in line and "created_at:" in line
    assert "sent 1 post to" in err
    key = f"x:{good['id']}"
    wait_processed(settings, pipeline.endpoints.kafka, pipeline.es, [key], timeout=180)

    code, out, _ = run_piped("post", key)
    ran.add("pantau post")
    assert code == 0 and json.loads(out)["document"]["text"] == good["text"]

    code, out, _ = run_piped("status")
    ran.add("pantau status")
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("topic "))
    assert header.split() == ["topic", "partitions", "replication", "lag"]
    code, out, _ = run_piped("status", "--json", "--watch", "--count", "1")
    assert code == 0 and len(out.splitlines()) == 1 and json.loads(out)["worker"] == "running"

    code, out, _ = run_piped("classify", "PDAM Tirta Kerta Raharja mati dari subuh")
    ran.add("pantau classify")
    assert code == 0 and json.loads(out)["agencies"] == ["pdam"]

    code, out, _ = run_piped("topics", "--json", "--since", "3650d")
    ran.add("pantau topics")
    assert code == 0 and all(json.loads(line)["id"] for line in out.splitlines())
    code, _, _ = run_piped("topics", "--since", "3650d")
    assert code == 0

    code, out, err = run_piped("deadletter", "list", "--limit", "0")
    ran.add("pantau deadletter list")
    assert code == 0 and "dead letter" in err
    if out:
        assert out.splitlines()[0].split() == ["failed_at_utc", "stage", "post_key", "from", "reason"]
    code, _, err = run_piped("deadletter", "replay", "--key", "x:none-such", "--dry-run")
    ran.add("pantau deadletter replay")
    assert code == 0 and "0 letters match; nothing sent" in err

    code, out, _ = run_piped("responsiveness", "--json", "--since", "3650d")
    ran.add("pantau responsiveness")
    assert code == 0 and isinstance(json.loads(out), list)
    code, _, _ = run_piped("responsiveness", "--since", "3650d", "--by", "region")
    assert code == 0
    code, _, err = run_piped("responsiveness", "mark", "x:none|bpbd", "--not-a-complaint", "--why", "tes")
    ran.add("pantau responsiveness mark")
    assert code == 1 and len(err.strip().splitlines()) == 1

    code, _, _ = run_piped("schema", "export", str(tmp_path / "schemas"))
    ran.add("pantau schema export")
    assert code == 0 and (tmp_path / "schemas" / "RawPost.schema.json").exists()

    sample = tmp_path / "eval.jsonl"
    sample.write_text(
        "".join((REPO_ROOT / "data" / "indomain" / "test.jsonl").read_text().splitlines(True)[:12])
    )
    code, out, _ = run_piped("model", "eval", "--data", str(sample), "--task", "category")
    ran.add("pantau model eval")
    assert code == 0, out
    matrix = out.split("confusion (rows: true, columns: predicted)")[1].strip().splitlines()
    assert matrix[0].split() == list(CATEGORIES)  # whole labels, none cut to "a…"

    missing = ["--checkpoint-dir", str(tmp_path / "no-run-a"), "--checkpoint-dir", str(tmp_path / "no-run-b")]
    soup = ("model", "soup", "--base", str(settings.model_dir), *missing, "--out", str(tmp_path / "soup"))
    code, out, err = run_piped(*soup)
    ran.add("pantau model soup")
    said = (out + err).strip()  # the model commands print on the console's stream, as `model eval` does
    assert code == 2 and "is missing: not the --checkpoint-dir" in said and len(said.splitlines()) == 1

    varied = tmp_path / "augmented" / "train.jsonl"
    code, out, err = run_piped("model", "augment", "--data", str(sample), "--out", str(varied))
    ran.add("pantau model augment")
    said = (out + err).strip()
    assert code == 0 and said == f"wrote 12 variants of 12 posts to {varied}", said
    assert len(varied.read_text(encoding="utf-8").splitlines()) == 12

    labels = tmp_path / "labels.csv"
    code, _, err = run_piped("label", "export", "--since", "3650d", "--out", str(labels))
    ran.add("pantau label export")
    assert code == 0 and len(err.strip().splitlines()) == 1 and labels.read_text(encoding="utf-8-sig")
    code, _, err = run_piped("label", "import", str(labels), "--to", str(tmp_path / "corrections.jsonl"))
    ran.add("pantau label import")
    assert code == 0 and len(err.strip().splitlines()) == 1  # nothing corrected: every row skipped

    subscribers = tmp_path / "alerts.yaml"
    subscribers.write_text(
        "subscribers:\n  - name: ops\n    slack: {url: 'http://127.0.0.1:9/hook'}\n"
        "    match: {kinds: [emergency], min_severity: warning}\n"
    )
    for command in (
        ("alerts", "list", "--since", "3650d"),
        ("alerts", "list", "--json"),
        ("alerts", "test-rule", "--since", "1d"),
        ("alerts", "silences"),
        ("subscribers", "list"),
        ("ingest", "status"),
    ):
        code, _, err = run_piped(*command, env={"PANTAU_ALERTS_FILE": str(subscribers)})
        ran.add(" ".join(["pantau", *command[:2]]))
        assert code == 0, (command, err)

    code, out, _ = run_piped("kibana", "export", "-")
    ran.add("pantau kibana export")
    assert code == 0 and all(json.loads(line)["type"] for line in out.splitlines())
    code, _, err = run_piped("kibana", "import", "--url", "http://127.0.0.1:9")  # nothing listens there
    ran.add("pantau kibana import")
    assert code != 0 and err.strip()
    code, _, _ = run_piped("report", "--since", "3650d", "--out", str(tmp_path / "brief.html"))
    ran.add("pantau report")
    assert code == 0 and "<svg" in (tmp_path / "brief.html").read_text()

    assert sorted(set(commands()) - ran) == sorted(COSTLY), "a command is neither run here nor excused"
    for command in COSTLY:  # their help, at least, has no escape codes when piped
        result = pantau(*command.split()[1:], "--help", env=NARROW)
        assert result.returncode == 0 and not ESCAPES.search(result.stdout + result.stderr)
