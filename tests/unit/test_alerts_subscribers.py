"""The subscribers file: the issue's minimal example as written, ``${ENV}``, one channel, and errors that
name the line and the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.alerts.subscribers import SubscribersError, SubscribersWatcher, parse_subscribers
from schemas.alerts import Alert, AlertKind, Severity
from schemas.vocab import Agency, Region

MINIMAL = """\
subscribers:
  - name: bpbd-ops
    webhook:
      url: https://example.org/hook
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw   # Standard Webhooks secret (base64 after whsec_)
    match: {kinds: [emergency, spike], agencies: [bpbd], regions: ["3602"], min_severity: warning}
"""


def _alert(**kw: object) -> Alert:
    fields: dict[str, object] = {
        "id": "al_1",
        "key": "emergency:region=3602",
        "kind": AlertKind.EMERGENCY,
        "severity": Severity.CRITICAL,
        "agencies": [Agency.BPBD],
        "region": Region.KAB_LEBAK,
        "window_start": datetime(2026, 12, 1, tzinfo=UTC),
        "window_end": datetime(2026, 12, 1, 1, tzinfo=UTC),
        "count": 3,
        "expected": 0,
        "summary": "x",
        "raised_at": datetime(2026, 12, 1, tzinfo=UTC),
    }
    fields.update(kw)
    return Alert.model_validate(fields)


def test_the_minimal_example_parses_exactly_and_matches_with_and_of_or() -> None:
    (sub,) = parse_subscribers(MINIMAL, env={}).subscribers
    assert sub.name == "bpbd-ops" and sub.channel == "webhook" and sub.mode == "realtime"
    assert sub.webhook is not None and len(sub.webhook.key()) == 24
    assert sub.match.matches(_alert())
    assert not sub.match.matches(_alert(region=Region.KOTA_SERANG))
    assert not sub.match.matches(_alert(severity=Severity.INFO))
    assert not sub.match.matches(_alert(kind=AlertKind.SILENCE))
    everything = parse_subscribers("subscribers:\n  - name: all\n    slack: {url: 'http://x/y'}\n", env={})
    assert everything.subscribers[0].match.matches(_alert(kind=AlertKind.SILENCE, agencies=[]))


def test_env_expansion_and_secrets_from_the_environment() -> None:
    text = "subscribers:\n  - name: tg\n    telegram: {bot_token: '${TG}', chat_id: -100123}\n"
    (sub,) = parse_subscribers(text, env={"TG": "123:abc"}).subscribers
    assert (
        sub.telegram is not None and sub.telegram.bot_token == "123:abc" and sub.telegram.chat_id == "-100123"
    )
    with pytest.raises(SubscribersError) as missing:
        parse_subscribers(text, "f.yaml", env={})
    assert missing.value.lines == [
        "f.yaml:3: subscribers[0].telegram.bot_token: environment variable TG is not set"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL.replace("[emergency, spike]", "[emergency, spik]"),
            "f.yaml:6: subscribers[0].match.kinds[1]:",
        ),
        (
            MINIMAL.replace("whsec_MfKQ", "MfKQ"),
            "f.yaml:5: subscribers[0].webhook.secret: must start with whsec_",
        ),
        (
            MINIMAL.replace("    webhook:", "    slack: {url: 'http://a/b'}\n    webhook:"),
            "f.yaml:2: subscribers[0]: needs exactly one channel",
        ),
        (
            MINIMAL.replace("match:", "macth:"),
            "f.yaml:6: subscribers[0].macth: Extra inputs are not permitted",
        ),
        ("subscribers:\n  - name: a\n    slack: {url: x\n", "f.yaml:4: not valid YAML"),
        (MINIMAL + MINIMAL.removeprefix("subscribers:\n"), "subscriber name 'bpbd-ops' is used twice"),
    ],
)
def test_errors_name_the_line_and_the_field(text: str, expected: str) -> None:
    with pytest.raises(SubscribersError) as caught:
        parse_subscribers(text, "f.yaml", env={})
    assert any(expected in line for line in caught.value.lines), caught.value.lines


def test_the_watcher_reads_changes_and_keeps_the_last_good_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(MINIMAL)
    watcher = SubscribersWatcher(path)
    assert [s.name for s in watcher.get().subscribers] == ["bpbd-ops"]
    path.write_text(MINIMAL.replace("bpbd-ops", "bpbd-lebak") + "  ")
    assert [s.name for s in watcher.get().subscribers] == ["bpbd-lebak"]
    path.write_text("subscribers: [")
    assert [s.name for s in watcher.get().subscribers] == ["bpbd-lebak"] and watcher.error is not None


def test_an_empty_file_keeps_the_last_good_one_and_subscribers_list_empties_it(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(MINIMAL)
    watcher = SubscribersWatcher(path)
    assert [s.name for s in watcher.get().subscribers] == ["bpbd-ops"]
    path.write_text("")  # an editor's save caught between its truncate and its write
    assert [s.name for s in watcher.get().subscribers] == ["bpbd-ops"] and watcher.error is None
    path.write_text("subscribers: []\n")
    assert watcher.get().subscribers == []


def test_unknown_tags_and_self_containing_aliases_are_errors_and_unquoted_times_are_times() -> None:
    base = "subscribers:\n  - name: q\n    slack: {url: 'http://x/y'}\n"
    with pytest.raises(SubscribersError) as caught:
        parse_subscribers(base + "    lang: !secret id\n", "f.yaml", env={})
    assert caught.value.lines == [
        "f.yaml:4: subscribers[0].lang: could not determine a constructor for the tag '!secret'"
    ]
    with pytest.raises(SubscribersError, match="aliases nest too deeply"):
        parse_subscribers("subscribers: &a [*a]\n", "f.yaml", env={})
    (sub,) = parse_subscribers(base + "    mode: digest\n    digest_at: 18:30\n", env={}).subscribers
    assert sub.digest_at == "18:30"  # YAML 1.1 would read 1110 (base 60)


def test_numbers_not_written_as_plain_decimals_stay_as_written() -> None:
    """YAML 1.1 reads 0123 as the octal 83 and 1e5 as 100000.0: an id or a phone number would change."""
    text = (
        "subscribers:\n  - name: wa\n    whatsapp: {access_token: t, phone_number_id: 0123, to: 1e5}\n"
        "    repeat_interval: 0600\n"
    )
    (sub,) = parse_subscribers(text, env={}).subscribers
    assert sub.whatsapp is not None
    assert (sub.whatsapp.phone_number_id, sub.whatsapp.to) == ("0123", "1e5")
    assert sub.repeat_interval == 600  # a number field reads the written digits as decimal


def test_the_readme_example_is_a_valid_file() -> None:
    from pipeline.settings import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```yaml", readme.index("**The subscribers file**")) + len("```yaml")
    example = readme[start : readme.index("```", start)]
    env = {"WA_TOKEN": "t", "TG_TOKEN": "1:a", "SMTP_URL": "smtp://u:p@h:587", "SLACK_HOOK": "https://h/x"}
    subscribers = parse_subscribers(example, env=env).subscribers
    assert [s.channel for s in subscribers] == ["webhook", "whatsapp", "telegram", "email", "slack", "email"]
    assert [s.brief.every for s in subscribers if s.brief] == ["weekly"]


def test_quiet_hours_and_digest_times_are_jakarta_time() -> None:
    from pipeline.alerts.delivery import digest_due, in_quiet_hours, overrides_quiet

    text = "subscribers:\n  - name: q\n    slack: {url: 'http://x/y'}\n    quiet_hours: '22:00-06:00'\n"
    sub = parse_subscribers(text, env={}).subscribers[0]
    assert in_quiet_hours(sub, datetime(2026, 12, 1, 16, 0, tzinfo=UTC))  # 23:00 WIB
    assert not in_quiet_hours(sub, datetime(2026, 12, 1, 2, 0, tzinfo=UTC))  # 09:00 WIB
    assert overrides_quiet(_alert()) and not overrides_quiet(_alert(severity=Severity.WARNING))
    due = digest_due(sub, datetime(2026, 12, 1, 1, 0, tzinfo=UTC))  # 08:00 WIB: today's 07:00 passed
    assert due is not None and due.astimezone(UTC) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def test_quiet_hours_and_digest_times_may_name_seconds() -> None:
    from pipeline.alerts.delivery import digest_due, in_quiet_hours

    text = (
        "subscribers:\n  - name: q\n    slack: {url: 'http://x/y'}\n"
        "    quiet_hours: '09:00:00-09:00:30'\n    digest_at: '07:00:15'\n"
    )
    sub = parse_subscribers(text, env={}).subscribers[0]
    assert in_quiet_hours(sub, datetime(2026, 12, 1, 2, 0, 29, tzinfo=UTC))  # 09:00:29 WIB
    assert not in_quiet_hours(sub, datetime(2026, 12, 1, 2, 0, 30, tzinfo=UTC))
    due = digest_due(sub, datetime(2026, 12, 1, 0, 0, 20, tzinfo=UTC))  # 07:00:20 WIB
    assert due is not None and due.astimezone(UTC) == datetime(2026, 12, 1, 0, 0, 15, tzinfo=UTC)
    with pytest.raises(SubscribersError, match=r"alerts file>:4: subscribers\[0\].quiet_hours"):
        parse_subscribers(text.replace("09:00:30", "09:00:60"), env={})


def test_a_digest_goes_only_to_subscribers_who_name_its_kind() -> None:
    from schemas.alerts import AlertStatus
    from schemas.subscribers import Match

    digest = _alert(
        id="al_x",
        key="overdue_response:agency=dishub",
        revision=1,
        kind=AlertKind.OVERDUE_RESPONSE,
        severity=Severity.WARNING,
        status=AlertStatus.FIRING,
        agencies=["dishub"],
        region=None,
        summary="3 keluhan",
    )
    assert not Match().matches(digest)
    assert not Match(agencies=["dishub"]).matches(digest)
    assert Match(kinds=["overdue_response"], agencies=["dishub"]).matches(digest)
    spike = digest.model_copy(update={"kind": AlertKind.SPIKE})
    assert Match().matches(spike)


SLACK = b"subscribers:\n  - name: a\n    slack: {url: 'http://x/y'}\n"
STRAY = {  # what an editor or a copy-paste can leave in the file, and the line it is on
    "latin-1": (SLACK.replace(b"name: a", b"name: a  # caf\xe9"), 2),
    "nul": (SLACK + b"\x00\n", 4),
    "control": (SLACK.replace(b"name: a", b"name: a\x1b"), 2),
    "bigint": (SLACK + b"    repeat_interval: " + b"9" * 5000 + b"\n", 4),
    "bad date": (SLACK + b"    lang: 2026-13-01\n", 4),
    "nesting": (b"subscribers: " + b"[" * 5000 + b"]" * 5000 + b"\n", 1),
}


@pytest.mark.parametrize("case", sorted(STRAY))
def test_a_stray_byte_is_an_error_naming_the_file_and_line_and_the_watcher_keeps_the_last_good_file(
    tmp_path: Path, case: str
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(MINIMAL)
    watcher = SubscribersWatcher(path)
    assert [s.name for s in watcher.get().subscribers] == ["bpbd-ops"]
    content, line = STRAY[case]
    path.write_bytes(content + b"  ")  # a different size: the watcher reads it again
    assert [s.name for s in watcher.get().subscribers] == ["bpbd-ops"]
    assert watcher.error is not None and len(watcher.error.lines) == 1
    assert watcher.error.lines[0].startswith(f"{path}:{line}: "), watcher.error.lines


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ('email: {to: a@b.co, from: "x@y\\nBcc: z@q"}', "subscribers[0].email.from: 'x@y\\nBcc: z@q' is not"),
        ("email: {to: a@b.co, from: 'x@y, z@q'}", "subscribers[0].email.from:"),
        ('email: {to: a@b.co, from: "Pant\\x85au <a@b.co>"}', "subscribers[0].email.from:"),
        ("email: {to: a@b.co, smtp_url: 'smtp://h:99999'}", "subscribers[0].email.smtp_url: has a port"),
        ("email: {to: a@b.co, smtp_url: 'smtp://h:port'}", "subscribers[0].email.smtp_url: has a port"),
        (
            'whatsapp: {access_token: "t\\nX-A: b", phone_number_id: 1, to: 62}',
            "whatsapp.access_token: must not",
        ),
        ("telegram: {bot_token: '1:A/../x', chat_id: 1}", "subscribers[0].telegram.bot_token: must not"),
    ],
)
def test_what_goes_into_a_header_or_a_url_is_checked_when_the_file_is_read(
    channel: str, expected: str
) -> None:
    with pytest.raises(SubscribersError) as caught:
        parse_subscribers(f"subscribers:\n  - name: a\n    {channel}\n", "f.yaml", env={})
    assert caught.value.lines[0].startswith("f.yaml:3: ") and expected in caught.value.lines[0], (
        caught.value.lines
    )
    named = "subscribers:\n  - name: a\n    email: {to: a@b.co, from: 'Pantau Banten <pantau@b.co>'}\n"
    (sub,) = parse_subscribers(named, env={}).subscribers
    assert sub.email is not None and sub.email.sender == "Pantau Banten <pantau@b.co>"


def test_aliases_of_aliases_are_refused_before_they_expand() -> None:
    """Seven lines that would expand to ten million values (a "billion laughs"); read on the delivery loop."""
    levels = ["x0: &x0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 7)]
    text = SLACK.decode() + "\n".join(levels) + "\n"
    with pytest.raises(SubscribersError) as caught:
        parse_subscribers(text, env={})
    assert "expands to over 100,000 values" in str(caught.value)
