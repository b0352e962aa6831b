"""Responsiveness with plain records and no servers: official accounts, the SLA clock, routing and
linking complaints to their first official reply."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.gazetteer.accounts import AccountsFileError, OfficialAccounts, read_accounts_file
from pipeline.responsiveness.clock import JAKARTA, SlaClock, load_holidays
from pipeline.responsiveness.stage import ResponsivenessStage, ThreadState, asks, thread_keys
from pipeline.stages.records import Outgoing, Record
from schemas.posts import EnrichedPost, Sentiment, SentimentLabel
from schemas.responses import ResponseDocument, ResponseMark
from schemas.vocab import Agency, Category, Platform

AT = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
INDEX = "pantau-responses"


@pytest.fixture(scope="module")
def accounts() -> OfficialAccounts:
    return OfficialAccounts.load()


def post(
    pid: str,
    text: str = "jalan rusak parah, dpupr kemana aja",
    *,
    platform: str = "x",
    handle: str | None = "warga1",
    author_id: str | None = None,
    agencies: list[str] | None = None,
    label: SentimentLabel = SentimentLabel.NEGATIVE,
    reply_to: str | None = None,
    conversation: str | None = None,
    minutes: float = 0,
    public: bool = True,
) -> EnrichedPost:
    return EnrichedPost(
        id=pid,
        platform=Platform(platform),
        text=text,
        created_at=AT + timedelta(minutes=minutes),
        author={"handle": handle, "id": author_id},
        reply_to_id=reply_to,
        conversation_id=conversation,
        agencies=[Agency(a) for a in (agencies if agencies is not None else ["dpupr"])],
        region="3604",
        sentiment=Sentiment(label=label, score=0.9, scores={label: 0.9}),
        category=Category.LAYANAN_UMUM,
        category_confidence=0.8,
        is_public_service=public,
        model_version="test",
        processed_at=AT,
    )


class Thread:
    """Runs posts through route → link with an in-memory table, as the agent does with Faust's."""

    def __init__(self, accounts: OfficialAccounts, sla: int = 3600) -> None:
        self.stage = ResponsivenessStage(accounts, SlaClock(sla, {"dishub": 60}), INDEX)
        self.table: dict[bytes, bytes] = {}
        self.docs: dict[str, dict[str, Any]] = {}
        self.offset = 0

    def send(self, *posts: EnrichedPost, now: datetime = AT) -> list[Outgoing]:
        records = [self._record(p.model_dump_json().encode()) for p in posts]
        routed = self.stage.route(records)
        assert not routed.failed
        self.link([self._record(m.value, m.key) for m in routed.messages], now)
        return routed.messages

    def link(self, records: list[Record], now: datetime = AT) -> None:
        outcome = self.stage.link(records, {r.key or b"": self.table.get(r.key or b"") for r in records}, now)
        assert not outcome.failed
        self.table.update(outcome.states)
        for key in outcome.pruned:
            del self.table[key]
        for action in outcome.documents:
            self.docs[action.key] = action.source or {}

    def _record(self, value: bytes | None, key: bytes | None = None) -> Record:
        self.offset += 1
        return Record("t", 0, self.offset, key, value)


def test_official_accounts_match_by_id_first_then_by_folded_handle_and_never_by_hashtag(
    tmp_path: Path,
) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(
        "accounts:\n"
        "  - {agency: dishub, platform: x, id: 12345, handle: '@dishub_kabserang', region: '3604'}\n"
        "  - {agency: pdam, handle: '@PDAM.TirtaAlbantani'}\n"
    )
    accounts = OfficialAccounts.load(path)
    by_id = accounts.find("x", "12345", "someone_renamed")
    assert by_id is not None and by_id.agency == Agency.DISHUB and by_id.region == "3604"
    assert accounts.find("instagram", "12345", None) is None  # ids belong to one platform
    found = accounts.find("instagram", None, "pdam_tirtaalbantani_official")
    assert found is not None and found.agency == Agency.PDAM
    gazetteer = accounts.find("x", None, "@BPBD_Banten")
    assert gazetteer is not None and gazetteer.agency == Agency.BPBD
    assert accounts.find("x", None, "#samsatbanten") is None
    assert accounts.find("x", None, "warga_biasa") is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts:\n  - {agency: samsat, handle: '#samsatbanten'}\n")
    with pytest.raises(AccountsFileError, match="hashtag"):
        read_accounts_file(bad)


def test_business_hours_count_only_working_time_in_jakarta() -> None:
    holidays = load_holidays()
    assert date(2026, 8, 17) in holidays
    clock = SlaClock(3600 * 8, business_hours=(time(8), time(16)), holidays=holidays)
    friday_3pm = datetime(2026, 11, 20, 15, 0, tzinfo=JAKARTA)
    monday_9am = datetime(2026, 11, 23, 9, 0, tzinfo=JAKARTA)
    assert clock.elapsed(friday_3pm, monday_9am) == 2 * 3600  # 15-16 Friday, 8-9 Monday
    assert clock.due(friday_3pm, "bpbd") == datetime(2026, 11, 23, 15, 0, tzinfo=JAKARTA)
    before_holiday = datetime(2026, 8, 14, 15, 0, tzinfo=JAKARTA)  # Friday before 17 August (Monday)
    assert clock.elapsed(before_holiday, datetime(2026, 8, 18, 9, 0, tzinfo=JAKARTA)) == 2 * 3600
    calendar = SlaClock(259_200, {"bpbd": 86_400})
    assert calendar.due(friday_3pm, "bpbd") == friday_3pm + timedelta(days=1)
    assert calendar.elapsed(friday_3pm, monday_9am) == 66 * 3600


def test_questions_are_recognised() -> None:
    assert asks("kapan jalan diperbaiki")
    assert asks("air mati lagi?")
    assert asks("tolong dibantu min @samsatbanten, pajaknya udh dibayar")
    assert asks("mohon bantuan, pohon tumbang nutup jalan")
    assert not asks("terima kasih pak, sudah bagus")


def test_a_reply_before_its_complaint_still_links(accounts: OfficialAccounts) -> None:
    thread = Thread(accounts)
    thread.send(post("r1", "mohon maaf, segera kami cek", handle="dpupr_banten", reply_to="c1", minutes=30))
    assert thread.docs == {}
    thread.send(post("c1"))
    doc = ResponseDocument.model_validate(thread.docs["x:c1|dpupr"])
    assert doc.first_response_s == 1800 and doc.status == "answered" and doc.responder == "dpupr_banten"
    assert doc.response_key == "x:r1"


def test_two_replies_the_first_counts_in_either_order(accounts: OfficialAccounts) -> None:
    for order in ((10, 50), (50, 10)):
        thread = Thread(accounts)
        thread.send(post("c1", conversation="c1"))
        for minutes in order:
            thread.send(
                post(
                    f"r{minutes}",
                    "kami tindak lanjuti",
                    handle="@DPUPR_Banten",
                    reply_to="c1",
                    conversation="c1",
                    minutes=minutes,
                )
            )
        assert thread.docs["x:c1|dpupr"]["first_response_s"] == 600, order
        assert thread.docs["x:c1|dpupr"]["response_key"] == "x:r10"


def test_each_agency_clock_is_stopped_only_by_its_own_accounts(accounts: OfficialAccounts) -> None:
    thread = Thread(accounts)
    thread.send(post("c1", "jalan rusak dan air pdam mati", agencies=["dpupr", "pdam"]))
    thread.send(post("r1", "sudah kami teruskan", handle="bpbd_banten", reply_to="c1", minutes=5))
    assert {k: d["status"] for k, d in thread.docs.items()} == {"x:c1|dpupr": "open", "x:c1|pdam": "open"}
    thread.send(post("r2", "kami cek", handle="dpupr_banten", reply_to="c1", minutes=7))
    assert thread.docs["x:c1|dpupr"]["status"] == "answered"
    assert thread.docs["x:c1|pdam"]["first_response_at"] is None


def test_a_reply_down_the_chain_counts_and_conversation_ids_prove_it_only_on_x(
    accounts: OfficialAccounts,
) -> None:
    thread = Thread(accounts)
    # X: the complaint is the conversation's root; the agency answers a follow-up in the thread.
    thread.send(
        post(
            "r1", "sudah kami jadwalkan", handle="dpupr_banten", reply_to="f1", conversation="c1", minutes=20
        )
    )
    thread.send(post("f1", "halo?", reply_to="c1", conversation="c1", agencies=[], minutes=10))
    thread.send(post("c1", conversation="c1"))
    assert thread.docs["x:c1|dpupr"]["first_response_s"] == 1200
    # Instagram: a comment under the agency's post; the agency answers another comment.
    ig = Thread(accounts)
    ig.send(post("c2", platform="instagram", reply_to="p0", conversation="p0"))
    ig.send(
        post(
            "r2",
            "silakan DM",
            platform="instagram",
            handle="dpupr_banten",
            reply_to="other",
            conversation="p0",
            minutes=3,
        )
    )
    assert ig.docs["instagram:c2|dpupr"]["status"] == "open"
    ig.send(
        post(
            "r3",
            "mohon maaf",
            platform="instagram",
            handle="dpupr_banten",
            reply_to="c2",
            conversation="p0",
            minutes=9,
        )
    )
    assert ig.docs["instagram:c2|dpupr"]["first_response_s"] == 540


def test_what_is_a_complaint(accounts: OfficialAccounts) -> None:
    stage = ResponsivenessStage(accounts, SlaClock(3600), INDEX)
    assert stage.thread_post(post("a")) is not None
    question = post("b", "kapan jalan diperbaiki", label=SentimentLabel.NEUTRAL)
    assert stage.thread_post(question) is not None
    assert stage.thread_post(post("c", "bagus", label=SentimentLabel.POSITIVE)) is None
    assert stage.thread_post(post("d", agencies=[])) is None  # names no agency
    assert stage.thread_post(post("e", handle="dpupr_banten")) is None  # an agency's own post, no reply
    hashtag_author = stage.thread_post(post("f", handle="#dpuprbanten"))
    assert hashtag_author is not None and hashtag_author.complaint_agencies == [Agency.DPUPR]


def test_unanswered_turns_overdue_by_wall_time_and_a_mark_takes_it_out(accounts: OfficialAccounts) -> None:
    thread = Thread(accounts, sla=3600)
    thread.send(post("c1", "lampu merah mati dishub", agencies=["dishub", "dpupr"]))
    assert thread.stage.overdue(thread.table.items(), AT + timedelta(seconds=59)) == []
    late = thread.stage.overdue(thread.table.items(), AT + timedelta(seconds=61))
    assert [(a.key, (a.source or {})["status"]) for a in late] == [("x:c1|dishub", "overdue")]
    thread.stage.overdue_done(late)
    assert thread.stage.overdue(thread.table.items(), AT + timedelta(seconds=120)) == []
    mark = ResponseMark(
        record="x:c1|dpupr", mark="handled_elsewhere", by="staf", why="dijawab via telepon", at=AT
    )
    thread.link([Record("in", 0, 99, b"x:c1", mark.model_dump_json().encode())], AT + timedelta(hours=2))
    doc = thread.docs["x:c1|dpupr"]
    assert doc["status"] == "open" and doc["mark"]["by"] == "staf"
    assert thread.stage.overdue(thread.table.items(), AT + timedelta(hours=3)) == []
    # Answered after the SLA: late.
    thread.send(post("r1", "maaf terlambat", handle="dishub_banten", reply_to="c1", minutes=5))
    assert thread.docs["x:c1|dishub"]["status"] == "answered_late"


def test_replays_change_nothing_and_the_index_restores_a_lost_table(accounts: OfficialAccounts) -> None:
    thread = Thread(accounts)
    thread.send(post("c1", platform="facebook"))
    thread.send(post("r1", "kami cek", platform="facebook", handle="dpupr_banten", reply_to="c1", minutes=2))
    answered = dict(thread.docs)
    thread.send(post("c1", platform="facebook"))  # redelivered after a crash
    assert thread.docs == answered
    restored = Thread(accounts)
    restored.table = restored.stage.restore(answered.values())
    restored.send(post("c1", platform="facebook"))  # known: the answered record is not reopened
    assert restored.docs == {}
    state = ThreadState.model_validate_json(restored.table[b"facebook:c1"])
    assert state.complaints["facebook:c1"].clocks["dpupr"].first_response_s == 120
    # An open complaint restored from the index is answered by a reply that comes later.
    lost = Thread(accounts)
    lost.send(post("c2", platform="facebook"))
    again = Thread(accounts)
    again.table = again.stage.restore(lost.docs.values())
    again.send(post("r2", "kami cek", platform="facebook", handle="dpupr_banten", reply_to="c2", minutes=4))
    assert again.docs["facebook:c2|dpupr"]["first_response_s"] == 240


def test_thread_keys() -> None:
    stage_post = ResponsivenessStage(OfficialAccounts([]), SlaClock(1), INDEX)
    del stage_post
    from schemas.responses import ThreadPost

    x = ThreadPost(
        key="x:2",
        id="2",
        platform=Platform.X,
        created_at=AT,
        conversation_id="1",
        official=Agency.BPBD,
        reply_to_id="1",
    )
    assert thread_keys(x) == ["x:1"]
    ig = ThreadPost(
        key="instagram:2",
        id="2",
        platform=Platform.INSTAGRAM,
        created_at=AT,
        conversation_id="0",
        official=Agency.BPBD,
        reply_to_id="1",
    )
    assert thread_keys(ig) == ["instagram:1"]
    assert ThreadState().complaints == {}


def _doc(key: str, agency: str, region: str, response_s: int | None, **extra: Any) -> ResponseDocument:
    return ResponseDocument.model_validate(
        {
            "key": f"{key}|{agency}",
            "complaint_key": key,
            "agency": agency,
            "region": region,
            "platform": "x",
            "thread": key,
            "created_at": AT,
            "due_at": AT + timedelta(hours=1),
            "sla_s": 3600,
            "first_response_s": response_s,
            "first_response_at": None if response_s is None else AT + timedelta(seconds=response_s),
            "status": "open",
            "updated_at": AT,
            **extra,
        }
    )


def test_the_report_counts_rates_percentiles_and_overdue_per_agency_and_region() -> None:
    from pipeline.responsiveness.report import summarise

    mark = {"kind": "handled_elsewhere", "by": "staf", "why": "telepon", "at": AT}
    docs = [
        *(
            _doc(f"x:{i}", "bpbd", "3604", s)
            for i, s in enumerate([60, 120, 180, 240, 300, 360, 420, 480, 540, 600])
        ),
        _doc("x:a", "bpbd", "3673", None),
        _doc("x:b", "pdam", "3604", None),
        _doc("x:c", "pdam", "3604", None, mark=mark),
        _doc("x:d", "pdam", "3604", None, mark={**mark, "kind": "not_a_complaint"}),
    ]
    later = AT + timedelta(hours=2)
    rows = [r.as_json(False) for r in summarise(docs, later, by_region=False)]
    assert rows == [
        {
            "agency": "bpbd",
            "complaints": 11,
            "responded": 10,
            "reply_rate": round(10 / 11, 4),
            "median_first_response_s": 330.0,
            "p90_first_response_s": 540.0,
            "overdue": 1,
        },
        {
            "agency": "pdam",
            "complaints": 2,
            "responded": 0,
            "reply_rate": 0.0,
            "median_first_response_s": None,
            "p90_first_response_s": None,
            "overdue": 1,
        },
    ]
    by_region = summarise(docs, AT, by_region=True)
    assert [(r.agency, r.region, r.complaints, r.overdue) for r in by_region] == [
        ("bpbd", "3604", 10, 0),
        ("bpbd", "3673", 1, 0),
        ("pdam", "3604", 2, 0),
    ]
    assert set(by_region[0].as_json(True)) == {
        "agency",
        "region",
        "complaints",
        "responded",
        "reply_rate",
        "median_first_response_s",
        "p90_first_response_s",
        "overdue",
    }


def test_sla_settings_name_known_agencies() -> None:
    from pipeline.settings import Settings

    assert Settings(response_sla_agencies={"bpbd": 3600}).response_sla_agencies == {"bpbd": 3600}
    with pytest.raises(ValueError, match="unknown agencies"):
        Settings(response_sla_agencies={"bpdb": 3600})
    with pytest.raises(ValueError, match="closing after opening"):
        Settings(response_hours="16:00-08:00")


def test_settled_idle_threads_leave_the_table_unless_a_post_came_since(accounts: OfficialAccounts) -> None:
    thread = Thread(accounts)
    thread.send(post("c1"), now=AT)
    thread.send(post("r1", "kami cek", handle="dpupr_banten", reply_to="c1", minutes=5), now=AT)
    thread.send(post("c2", "kapan diperbaiki?", label=SentimentLabel.NEUTRAL), now=AT + timedelta(days=20))
    keep = timedelta(days=30)
    later = AT + timedelta(days=31)
    prunes = thread.stage.idle(thread.table.items(), later, keep)
    assert [m.key for m in prunes] == [b"x:c1"]  # c2's thread is younger than 30 days
    assert thread.stage.idle(thread.table.items(), AT + timedelta(days=29), keep) == []
    # A post of the thread that came after the prune was sent keeps it.
    thread.send(post("f1", "masih rusak", agencies=[], reply_to="c1", conversation="c1"), now=later)
    thread.link([Record("in", 0, 100, m.key, m.value) for m in prunes], later)
    assert b"x:c1" in thread.table
    prunes = thread.stage.idle(thread.table.items(), later + keep * 2, keep)
    thread.link([Record("in", 0, 101, m.key, m.value) for m in prunes], later + keep * 2)
    assert thread.table == {}
