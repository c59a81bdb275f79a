"""Key-result status against the period's end, and progress with partial credit, on hand-computed cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bridge.analytics.forecast import Forecast
from bridge.analytics.okr import (
    KeyResultStatus,
    LinkedMilestone,
    catalogue,
    key_result_status,
    milestone_progress,
    okr_tree,
)
from bridge.config import OkrsConfig
from bridge.domain import KeyResult, LinkOrigin, Ref, StatusCategory
from tests.analytics.build import SOURCE, milestone

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
END = date(2027, 3, 21)
KR = KeyResult("config", "KR1", "O1", "Cut failed card payments by half", period_end=END)


def linked(
    key: str, title: str, *, done: bool = False, value: float | None = None, tasks: tuple[int, int] = (0, 0)
) -> LinkedMilestone:
    return LinkedMilestone(Ref(SOURCE, key), key, title, LinkOrigin.RULE, done, value, *tasks)


def forecast(key: str, p50: date | None, p85: date | None) -> Forecast:
    def at(day: date | None) -> datetime | None:
        return datetime(day.year, day.month, day.day, 9, tzinfo=UTC) if day else None

    return Forecast(Ref(SOURCE, key), key, "Payments", None, 3, at(p50), at(p85), None, False, "3 open tasks")


PAY3 = linked("PAY-3", "Card payments")
PAY4 = linked("PAY-4", "Wallets")


Status = tuple[KeyResultStatus | None, str]


def status(*pairs: tuple[LinkedMilestone, Forecast | None], kr: KeyResult = KR, now: datetime = NOW,
           progress: float | None = 0.4, basis: str = "milestones") -> Status:  # fmt: skip
    forecasts = {f.milestone: f for _, f in pairs if f is not None}
    return key_result_status(kr, progress, basis, [m for m, _ in pairs], forecasts, now)


def test_every_p85_by_the_end_is_on_track_named_by_the_latest() -> None:
    found = status(
        (PAY3, forecast("PAY-3", date(2027, 3, 5), date(2027, 3, 10))),
        (PAY4, forecast("PAY-4", date(2027, 3, 12), date(2027, 3, 21))),
    )
    assert found == (
        KeyResultStatus.ON_TRACK,
        "PAY-4 Wallets: P85 2027-03-21 is the period's last day (the latest of its 2 open milestones)",
    )


def test_a_p85_after_the_end_with_every_p50_before_is_at_risk() -> None:
    found = status(
        (PAY3, forecast("PAY-3", date(2027, 3, 15), date(2027, 4, 2))),
        (PAY4, forecast("PAY-4", date(2027, 3, 12), date(2027, 3, 20))),
    )
    assert found == (
        KeyResultStatus.AT_RISK,
        "PAY-3 Card payments: P85 2027-04-02 is 12 days after the period ends 2027-03-21",
    )


def test_a_p50_after_the_end_is_off_track_named_by_the_latest_p50() -> None:
    found = status(
        (PAY3, forecast("PAY-3", date(2027, 3, 22), date(2027, 4, 30))),
        (PAY4, forecast("PAY-4", date(2027, 3, 25), date(2027, 4, 2))),
    )
    assert found == (
        KeyResultStatus.OFF_TRACK,
        "PAY-4 Wallets: P50 2027-03-25 is 4 days after the period ends 2027-03-21",
    )


def test_done_milestones_do_not_count_against_the_period() -> None:
    done = linked("PAY-1", "Card vault", done=True)
    found = status((done, None), (PAY3, forecast("PAY-3", date(2027, 3, 2), date(2027, 3, 3))))
    assert found[0] is KeyResultStatus.ON_TRACK
    assert found[1] == "PAY-3 Card payments: P85 2027-03-03 is 18 days before the period ends 2027-03-21"


def test_a_met_target_is_met_whatever_the_forecasts_say() -> None:
    late = (PAY3, forecast("PAY-3", date(2027, 5, 1), date(2027, 6, 1)))
    assert status(late, progress=1.0, basis="metric") == (KeyResultStatus.MET, "its target is met")
    assert status((linked("PAY-1", "Card vault", done=True), None)) == (
        KeyResultStatus.MET,
        "no metric, and every linked milestone is done (1 milestone)",
    )


def test_no_status_without_a_period_end_or_a_forecast() -> None:
    no_end = KeyResult("config", "KR2", "O1", "Wallet share")
    pair = (PAY3, forecast("PAY-3", date(2027, 3, 2), date(2027, 3, 3)))
    assert status(pair, kr=no_end) == (None, "no period end: set period_end on its objective in [okrs]")
    assert status((PAY3, None)) == (None, "PAY-3 Card payments has no forecast: it is not forecast")
    idle = Forecast(Ref(SOURCE, "PAY-3"), "PAY-3", "Payments", None, 3, None, None, None, False,
                    "cannot forecast: Payments finished no task in the last 42 days")  # fmt: skip
    assert status((PAY3, idle))[1] == (
        "PAY-3 Card payments has no forecast: cannot forecast: Payments finished no task in the last 42 days"
    )
    assert status() == (None, "no open milestone is linked to it, so nothing forecasts when it is met")


def test_a_period_over_with_the_target_not_met_is_off_track() -> None:
    pair = (PAY3, forecast("PAY-3", date(2027, 3, 30), date(2027, 4, 2)))
    found = status(pair, now=NOW + timedelta(days=25))
    assert found == (
        KeyResultStatus.OFF_TRACK,
        "the period ended 2027-03-21, 5 days ago, and the target is not met",
    )


def test_progress_gives_milestones_under_way_the_value_share_of_their_tasks_done() -> None:
    found, text = milestone_progress(
        [
            linked("PAY-1", "Card vault", done=True, value=5.0, tasks=(4, 4)),
            linked("PAY-3", "Card payments", value=3.0, tasks=(3, 4)),
            linked("PAY-4", "Wallets", value=2.0, tasks=(0, 6)),
        ]
    )
    # 5 done + 3 x 3/4 under way + 2 x 0 = 7.25 of 10
    assert found == pytest.approx(0.725)
    assert text == (
        "value 7.25 of 10 done (1 of 3 linked milestones); "
        "under way, by the share of their tasks done: PAY-3 Card payments 3 of 4 tasks"
    )


def test_okr_tree_gives_config_key_results_their_objectives_period_and_a_status() -> None:
    okrs = OkrsConfig.model_validate(
        {
            "period_end": "2027-06-30",
            "objectives": [
                {
                    "id": "O1",
                    "title": "Checkout",
                    "period_end": "2027-03-21",
                    "key_results": [{"id": "KR1", "title": "Cut failed card payments by half"}],
                },
                {"id": "O2", "title": "Mobile", "key_results": [{"id": "KR2", "title": "App rating"}]},
            ],
        }
    )
    found = catalogue([], [KeyResult("jira", "10001", "9", "Wallet share")], okrs)
    assert found.key_results[Ref("config", "KR1")].period_end == date(2027, 3, 21)
    assert found.key_results[Ref("config", "KR2")].period_end == date(2027, 6, 30)
    assert found.key_results[Ref("jira", "10001")].period_end == date(2027, 6, 30)
    milestones = {
        Ref(SOURCE, "PAY-3"): milestone(
            "PAY-3", title="Card payments", value=4.0, category=StatusCategory.IN_PROGRESS
        )
    }
    links = {Ref(SOURCE, "PAY-3"): {Ref("config", "KR1"): LinkOrigin.RULE}}
    tree = okr_tree(
        found,
        links,
        milestones,
        tasks_done={Ref(SOURCE, "PAY-3"): (1, 4)},
        forecasts=[forecast("PAY-3", date(2027, 3, 15), date(2027, 4, 2))],
        now=NOW,
    )
    kr1 = next(k for o in tree for k in o.key_results if k.key_result == Ref("config", "KR1"))
    assert kr1.progress == pytest.approx(0.25)
    assert kr1.status is KeyResultStatus.AT_RISK
    assert (
        kr1.status_reason == "PAY-3 Card payments: P85 2027-04-02 is 12 days after the period ends 2027-03-21"
    )
    assert kr1.period_end == date(2027, 3, 21)
