"""The forecast history: a simulated month of falling throughput, a milestone reached and tasks added,
each re-evaluation kept with the reason the forecast moved."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.analytics.forecast import Forecast
from bridge.cli.shared import read_config
from bridge.config import AnalyticsConfig, BridgeConfig
from bridge.domain import Milestone, Ref, RemotePage, StatusCategory, StatusChange, Task
from bridge.report.commands import report_command
from bridge.shared_analysis import shared_analysis
from bridge.store import Store, forecast_history
from bridge.store.pages import save_page
from bridge.store.snapshot import load_snapshot
from bridge.sync.desired import Labels, desired_state
from tests.store.test_flow_facts import TRACKER as JIRA_TRACKER

START = datetime(2026, 6, 1, 12, tzinfo=UTC)
SOURCE = "t"
CONFIG = BridgeConfig(
    analytics=AnalyticsConfig(forecast_runs=200, bootstrap_runs=100, forecast_window=timedelta(days=28))
)
TRACKER = (
    """
[analytics]
forecast_runs = 200
bootstrap_runs = 100
forecast_window = "28d"
"""
    + JIRA_TRACKER
)
DAY = timedelta(days=1)
M1, M2 = Ref(SOURCE, "m1"), Ref(SOURCE, "m2")


def task(n: int, milestone: str, done: datetime | None, created: datetime) -> tuple[Task, list[StatusChange]]:
    started = (done or created + timedelta(hours=1)) - timedelta(days=2)
    started = max(started, created)
    changes = [
        StatusChange(SOURCE, f"c{n}a", f"i{n}", started, "To Do", "Doing", StatusCategory.TODO,
                     StatusCategory.IN_PROGRESS),
    ]  # fmt: skip
    if done is not None:
        changes.append(
            StatusChange(SOURCE, f"c{n}b", f"i{n}", done, "Doing", "Done", StatusCategory.IN_PROGRESS,
                         StatusCategory.DONE)
        )  # fmt: skip
    category = StatusCategory.DONE if done else StatusCategory.IN_PROGRESS
    built = Task(
        source=SOURCE, remote_id=f"i{n}", key=f"T-{n}", title=f"Task {n}", milestone_id=milestone,
        team="alpha", work_type="api", raw_status="Done" if done else "Doing", category=category,
        created=created, updated=done or started, done=done,
    )  # fmt: skip
    return built, changes


def save(store: Store, now: datetime, tasks: list[tuple[Task, list[StatusChange]]], m1_done: bool) -> None:
    milestones = [
        Milestone(SOURCE, "m1", "PAY-1", "Payments", value=5.0, effort=1.0,
                  category=StatusCategory.DONE if m1_done else StatusCategory.IN_PROGRESS),
        Milestone(SOURCE, "m2", "PAY-2", "Refunds", value=1.0, effort=1.0),
    ]  # fmt: skip
    page = RemotePage(
        SOURCE, "issues", milestones=milestones, tasks=[t for t, _ in tasks],
        status_changes=[c for _, cs in tasks for c in cs],
    )  # fmt: skip
    with store.write() as conn:
        save_page(conn, page, now=now)


def reevaluate(store: Store, now: datetime) -> None:
    """What each cycle does after its pull: the shared analysis, its forecasts' moves kept."""
    report = shared_analysis(store, CONFIG, now).report
    with store.write() as conn:
        forecast_history.record(conn, report.forecasts, now=now)


def simulate_month(store: Store) -> tuple[datetime, datetime]:
    """PAY-2's forecast over three re-evaluations: first, after PAY-1 is reached and throughput fell,
    after two tasks were added; returns the times of the last two."""
    created = START - timedelta(days=60)
    # four weeks of a brisk team: one task finished every day (7 a week)
    work = [task(n, "old", START - timedelta(days=n + 0.5), created) for n in range(28)]
    open_m1 = [task(100 + n, "m1", None, created) for n in range(3)]
    open_m2 = [task(200 + n, "m2", None, created) for n in range(10)]
    save(store, START, work + open_m1 + open_m2, m1_done=False)
    reevaluate(store, START)

    # two weeks later: PAY-1's three tasks are done and nothing else, so throughput has fallen
    later = START + timedelta(days=14)
    finished_m1 = [task(100 + n, "m1", later - timedelta(days=n + 1), created) for n in range(3)]
    save(store, later, work + finished_m1 + open_m2, m1_done=True)
    reevaluate(store, later)

    # a week after that: two tasks are added to PAY-2
    last = later + timedelta(days=7)
    added = [task(300 + n, "m2", None, last - timedelta(days=1)) for n in range(2)]
    save(store, last, work + finished_m1 + open_m2 + added, m1_done=True)
    reevaluate(store, last)
    reevaluate(store, last + timedelta(hours=1))  # the same store again: nothing moved, nothing kept
    return later, last


def test_a_simulated_month_keeps_each_move_with_its_reason(store: Store) -> None:
    later, last = simulate_month(store)
    with store.read() as conn:
        points = forecast_history.history(conn, M2)
        reached = forecast_history.history(conn, M1)
    assert [p.at for p in points] == [START, later, last]
    assert points[0].reason == "first forecast"
    assert points[1].reason.startswith("milestone PAY-1 Payments reached; throughput fell from 7.0 to ")
    assert points[2].reason.startswith("2 tasks added")
    assert all(p.p85 is not None for p in points)
    assert points[0].p85 < points[1].p85 < points[2].p85  # type: ignore[operator]
    assert [p.reason for p in reached] == ["first forecast", forecast_history.REACHED]


def test_explain_shows_how_the_forecast_moved(sqlite_url: str, tmp_path: Path, run_cli: Any) -> None:
    store = Store(sqlite_url)
    store.upgrade()
    simulate_month(store)
    store.close()
    config = tmp_path / "bridge.toml"
    config.write_text(f'[store]\nurl = "{sqlite_url}"\n{TRACKER}')
    out = run_cli("explain", "PAY-2", "--config", str(config))
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.split("how its forecast moved:")[1].strip().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("- first forecast")
    assert lines[0].strip().startswith(START.strftime("%Y-%m-%d %H:%M UTC  P50 ")), "a time a person reads"
    assert "days later) - milestone PAY-1 Payments reached; throughput fell from 7.0 to" in lines[1]
    assert "- 2 tasks added" in lines[2]
    found = run_cli("explain", "PAY-2", "--config", str(config), "--json")
    moves = json.loads(found.stdout)["forecast_history"]
    assert len(moves) == 3 and moves[0]["why"] == "first forecast"


def test_the_report_shows_the_moves_in_terminal_json_and_html(sqlite_url: str, tmp_path: Path) -> None:
    store = Store(sqlite_url)
    store.upgrade()
    later, last = simulate_month(store)
    store.close()
    config = tmp_path / "bridge.toml"
    config.write_text(f'[store]\nurl = "{sqlite_url}"\n{TRACKER}')
    cfg = read_config(config)
    text = io.StringIO()
    report_command(cfg, now=last, as_json=False, team=None, out=text)
    section = text.getvalue().split("How the forecasts moved")[1]
    assert "PAY-2 Refunds" in section and "- 2 tasks added" in section
    assert "throughput fell from 7.0 to" in section and "first forecast" in section
    assert f"  {START:%Y-%m-%d %H:%M} UTC  P50 " in section and "+00:00" not in section
    document = io.StringIO()
    report_command(cfg, now=last, as_json=True, team=None, out=document)
    moved = {m["name"]: m["moves"] for m in json.loads(document.getvalue())["forecast_history"]}
    assert moved["PAY-2 Refunds"][-1]["why"].startswith("2 tasks added; throughput fell from 4.2 to")
    assert moved["PAY-1 Payments"][-1] == {"at": later.isoformat(timespec="minutes"), "forecast": "done",
                                           "why": "milestone reached"}  # fmt: skip
    page = tmp_path / "report.html"
    report_command(cfg, now=last, as_json=False, team=None, out=io.StringIO(), html=page)
    html = page.read_text()
    assert 'id="forecast-history"' in html and "<td>2 tasks added; throughput fell" in html
    assert f'<td class="nowrap">{START:%Y-%m-%d %H:%M} UTC</td>' in html, "a time and a date stay whole"


def test_the_simulated_slip_gives_one_slipping_label(store: Store, tmp_path: Path) -> None:
    _later, last = simulate_month(store)
    config = tmp_path / "bridge.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "unused.db"}"\n{TRACKER}')
    tracked = read_config(config)
    settings = CONFIG.analytics
    with store.read() as conn:
        slips = forecast_history.slipping(conn, last, settings.slip_window, settings.slip_share)
        before = forecast_history.slipping(conn, START + timedelta(days=1), settings.slip_window, 0.2)
    assert before == {}, "a first forecast is no slip"
    assert list(slips) == [M2], "PAY-1 is reached: only PAY-2 slips"
    # in force on the window's start (the 8th): P85 on the 14th, 6 days left; then moved to August
    assert slips[M2].startswith("its P85 date moved ")
    assert (
        "more than 20% of the 6 days it had left: milestone PAY-1 Payments reached; throughput" in slips[M2]
    )
    assert "2 tasks added" in slips[M2]
    snapshot = load_snapshot(store)
    report = shared_analysis(store, CONFIG, last).report
    wishes = desired_state(report, snapshot, SOURCE, tracked, slips)
    labelled = {ref for ref, wish in wishes.items() if "mb-slipping" in wish.labels}
    assert labelled == {M2}
    assert wishes[M2].reasons["mb-slipping"] == slips[M2]
    assert "mb-slipping" in Labels.of(tracked).managed, "the bridge takes its slipping label back"
    quiet = desired_state(report, snapshot, SOURCE, tracked, {})
    assert not any("mb-slipping" in wish.labels for wish in quiet.values())


def forecast_of(p85: datetime) -> Forecast:
    return Forecast(
        M2, "PAY-2", "alpha", None, 5, p85 - timedelta(days=2), p85, None, False, "", "PAY-2 Refunds"
    )


def test_a_move_within_the_share_is_no_slip_and_one_beyond_it_is(store: Store) -> None:
    window, share = timedelta(days=14), 0.2
    with store.write() as conn:
        forecast_history.record(conn, [forecast_of(START + timedelta(days=30))], now=START)
        # a week on, P85 three days later: 3 of the 30 days it had left is 10 %, no slip
        forecast_history.record(
            conn, [forecast_of(START + timedelta(days=33))], now=START + timedelta(days=7)
        )
        assert forecast_history.slipping(conn, START + timedelta(days=7), window, share) == {}
        # a day later, P85 ten days later than at first: 33 % of 30 days, a slip
        forecast_history.record(
            conn, [forecast_of(START + timedelta(days=40))], now=START + timedelta(days=8)
        )
        slips = forecast_history.slipping(conn, START + timedelta(days=8), window, share)
        # three weeks on, the window starts on the 9th with P85 on day 33 in force: 7 of its 25 days left
        later = forecast_history.slipping(conn, START + timedelta(days=22), window, share)
    assert slips == {
        M2: "its P85 date moved 10 days later since 2026-06-01, more than 20% of the 30 days it had left: "
        "the days went by with no change in its work or its teams' pace"
    }
    assert list(later) == [M2] and "7 days later since 2026-06-09, more than 20% of the 25 days" in later[M2]


def test_the_moves_spliced_into_a_report_document_give_the_same_document(sqlite_url: str) -> None:
    """`with_moves` writes the moves into the report's text, last, without decoding it: the document
    is the one decoding it, adding the moves and encoding it again gives, to the character."""
    from bridge.analytics.report import analyse
    from bridge.report.forecast_moves import load_moves, moves_json, with_moves

    store = Store(sqlite_url)
    store.upgrade()
    _, last = simulate_month(store)
    try:
        document = analyse(load_snapshot(store), BridgeConfig(), last, flow=True).to_json()
        moves = load_moves(store, last)
    finally:
        store.close()
    assert moves_json(moves), "the month left moves to show"
    slow = json.loads(document)
    slow["forecast_history"] = moves_json(moves)
    spliced = with_moves(document, moves)
    assert spliced == json.dumps(slow, indent=2, ensure_ascii=False)
    assert list(json.loads(spliced))[-1] == "forecast_history"
    # a document of another shape still gets them, the slow way
    assert json.loads(with_moves('{"a": 1}', moves))["forecast_history"] == moves_json(moves)


def _forecast(ref: Ref, name: str, remaining: int, p85_days: int) -> Forecast:
    finish = START + timedelta(days=p85_days)
    return Forecast(ref, ref.remote_id, "mobile", None, remaining, finish, finish, None, False, "",
                    name=name, weekly_throughput=5.0)  # fmt: skip


def test_a_forecast_moved_by_more_work_ranked_ahead_says_so(store: Store) -> None:
    """The team takes its milestones in rank order: tasks added to the first delay the second, whose
    own work did not change; its reason names what grew instead of "the days went by"."""
    first, second = Ref(SOURCE, "mob3"), Ref(SOURCE, "mob2")
    with store.write() as conn:
        before = [_forecast(first, "MOB-3 Onboarding", 6, 10), _forecast(second, "MOB-2 Crash fixes", 3, 11)]
        forecast_history.record(conn, before, now=START)
        after = [_forecast(first, "MOB-3 Onboarding", 10, 13), _forecast(second, "MOB-2 Crash fixes", 3, 18)]
        forecast_history.record(conn, after, now=START + timedelta(hours=2))
        moved = forecast_history.history(conn, second)
    assert moved[-1].reason == "4 tasks added to MOB-3 Onboarding, ranked ahead of it in team mobile"


def _unchanged_move(
    store: Store, after: timedelta, p50_days: tuple[int, int], p85_days: tuple[int, int], ref: Ref = M2
) -> str:
    """The reason kept when a milestone's P50 and P85 (days after START) go from the first to the second
    of each pair, `after` later, with its work and its team's pace as they were."""

    def found(p50: int, p85: int) -> Forecast:
        p50_at, p85_at = START + timedelta(days=p50), START + timedelta(days=p85)
        return Forecast(ref, "MOB-2", "mobile", None, 3, p50_at, p85_at, None, False, "",
                        name="MOB-2 Crash fixes", weekly_throughput=5.0)  # fmt: skip

    with store.write() as conn:
        forecast_history.record(conn, [found(p50_days[0], p85_days[0])], now=START)
        (point,) = forecast_history.record(conn, [found(p50_days[1], p85_days[1])], now=START + after)
    return point.reason


def test_a_days_drift_within_hours_is_said_to_be_the_simulations_within_its_spread(store: Store) -> None:
    """Two hours on, nothing changed, P85 a day later: not "the days went by" (only hours did), but the
    simulation's own drift, beside the span from P50 to P85 it is small against."""
    assert _unchanged_move(store, timedelta(hours=2), (20, 20), (24, 25)) == (
        "no change in its work or its teams' pace: the simulated forecast drifted 1 day in 2 hours, "
        "within its usual spread (5 days from P50 to P85)"
    )


def test_a_drift_beyond_the_spread_or_sooner_says_so_without_the_spread(store: Store) -> None:
    # 40 minutes on, P85 three days sooner, beyond the 2 days from P50 to P85
    assert _unchanged_move(store, timedelta(minutes=40), (21, 20), (25, 22)) == (
        "no change in its work or its teams' pace: the simulated forecast drifted 3 days in 40 minutes"
    )


def test_days_gone_by_with_the_date_later_keep_their_reason(store: Store) -> None:
    assert _unchanged_move(store, timedelta(days=2), (20, 22), (24, 26)) == forecast_history.DAYS_WENT_BY
    # days going by cannot bring a date sooner: that move is the simulation's
    sooner = _unchanged_move(store, timedelta(days=3, hours=5), (20, 19), (24, 24), ref=M1)
    assert sooner == (
        "no change in its work or its teams' pace: the simulated forecast drifted 1 day in 3 days, "
        "within its usual spread (5 days from P50 to P85)"
    )
