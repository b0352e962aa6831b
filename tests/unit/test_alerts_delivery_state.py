"""What a starting worker rebuilds from the delivery log (the broker may have lost every topic): the
cooldown of each (subscriber, key), and reminders of alerts still firing, numbered on from the last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.alerts.delivery import restore_state
from pipeline.alerts.store import Delivery, DeliveryStatus
from schemas.alerts import Alert, AlertKind, AlertStatus, Severity
from schemas.vocab import Agency, Region

T0 = datetime(2026, 12, 1, 3, tzinfo=UTC)


def _alert(**kw: object) -> Alert:
    fields: dict[str, object] = {
        "id": "al_1",
        "key": "emergency:region=3602",
        "kind": AlertKind.EMERGENCY,
        "severity": Severity.CRITICAL,
        "agencies": [Agency.BPBD],
        "region": Region.KAB_LEBAK,
        "window_start": T0,
        "window_end": T0 + timedelta(minutes=30),
        "count": 3,
        "expected": 0,
        "summary": "x",
        "raised_at": T0,
    }
    fields.update(kw)
    return Alert.model_validate(fields)


def _sent(
    alert: Alert, at: datetime, subscriber: str = "ops", status: DeliveryStatus = "sent", repeat: int = 0
) -> Delivery:
    return Delivery(
        subscriber=subscriber,
        channel="webhook",
        alert_id=alert.id,
        alert_key=alert.key,
        revision=alert.revision,
        status=status,
        alert=alert.model_dump_json(),
        repeat=repeat,
        updated_at=at,
    )


def test_cooldowns_and_reminders_come_back_from_what_was_sent() -> None:
    firing = _alert()
    other = _alert(id="al_2", key="spike:agency=pdam", kind=AlertKind.SPIKE, severity=Severity.WARNING)
    log = [
        _sent(firing, T0 + timedelta(minutes=5)),
        _sent(firing, T0 + timedelta(hours=4), repeat=1),  # the first reminder went out
        _sent(other, T0 + timedelta(minutes=7), subscriber="pdam"),
    ]
    state = restore_state(log, {}, "pantau.alerts")
    assert state.notified[("ops", firing.key)] == ("al_1", (T0 + timedelta(hours=4)).timestamp())
    assert state.notified[("pdam", other.key)][0] == "al_2"
    reminder = state.reminders[("ops", "al_1")]
    assert reminder.repeat == 1 and reminder.sent_at == (T0 + timedelta(hours=4)).timestamp()
    assert reminder.alert == firing and reminder.record.key == firing.key.encode()
    assert set(state.reminders) == {("ops", "al_1"), ("pdam", "al_2")}


def test_a_failed_reminder_still_means_the_subscriber_was_told() -> None:
    firing = _alert()
    assert not _sent(firing, T0, status="failed").was_sent
    told = _sent(firing, T0, status="failed", repeat=2)
    assert told.was_sent
    assert restore_state([told], {}, "t").reminders[("ops", "al_1")].repeat == 2


def test_an_alert_that_resolved_meanwhile_is_not_reminded_about() -> None:
    firing = _alert()
    resolved = _alert(revision=2, status=AlertStatus.RESOLVED)
    log = [_sent(firing, T0)]
    # the subscriber opted out of resolved notices: the alerts index knows it resolved
    assert restore_state(log, {"al_1": resolved}, "t").reminders == {}
    # the subscriber got the resolved notice
    assert restore_state([*log, _sent(resolved, T0 + timedelta(hours=1))], {}, "t").reminders == {}
    # the cooldown still counts from the firing notice
    assert restore_state(log, {"al_1": resolved}, "t").notified[("ops", firing.key)][0] == "al_1"


def test_an_escalation_the_worker_never_sent_is_what_the_reminder_repeats() -> None:
    warning = _alert(severity=Severity.WARNING)
    critical = _alert(revision=2)
    state = restore_state([_sent(warning, T0)], {"al_1": critical}, "t")
    assert state.reminders[("ops", "al_1")].alert.revision == 2


def test_test_alerts_leave_no_state() -> None:
    state = restore_state([_sent(_alert(test=True), T0)], {}, "t")
    assert state.notified == {} and state.reminders == {}
