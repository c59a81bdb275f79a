"""The forecast dates a milestone's date fields should hold: the forecast's UTC days, written again only
once a date moved at least `write.forecast_min_move` from the day last written, at most once a UTC day
per item; cleared for a done milestone or one without a forecast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.analytics.forecast import Forecast
from bridge.config import WriteConfig
from bridge.domain import ItemState, Ref
from bridge.sync.desired import forecast_dates
from bridge.sync.plan import Desired, plan
from bridge.written import Written, WrittenValue

PAY3 = Ref("jira", "10003")
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
WRITE = WriteConfig.model_validate({"forecast_fields": {"p50": "Forecast P50", "p85": "Forecast P85"}})


def forecast(p50: str, p85: str, explanation: str = "4 tasks left at 2.0 a week") -> Forecast:
    return Forecast(
        PAY3,
        "PAY-3",
        "payments",
        None,
        4,
        datetime.fromisoformat(p50 + "T15:00:00+00:00"),
        datetime.fromisoformat(p85 + "T23:30:00+00:00"),
        None,
        False,
        explanation,
        "PAY-3 Card payments",
        2.0,
    )


def written(p50: str | None, p85: str | None, at: datetime) -> Written:
    return Written(
        {(PAY3, "forecast_p50"): WrittenValue(p50, at), (PAY3, "forecast_p85"): WrittenValue(p85, at)}
    )


def test_a_first_forecast_wishes_both_utc_days_with_the_forecasts_explanation() -> None:
    found = forecast_dates(PAY3, forecast("2026-12-20", "2027-01-08"), WRITE, Written(), NOW)
    assert found == {
        "forecast_p50": ("2026-12-20", "P50 forecast 2026-12-20: 4 tasks left at 2.0 a week"),
        "forecast_p85": ("2027-01-08", "P85 forecast 2027-01-08: 4 tasks left at 2.0 a week"),
    }


def test_a_move_under_the_minimum_keeps_the_day_last_written() -> None:
    last = written("2026-12-20", "2027-01-08", NOW - timedelta(days=2))
    found = forecast_dates(PAY3, forecast("2026-12-22", "2027-01-06"), WRITE, last, NOW)
    assert found["forecast_p50"][0] == "2026-12-20"
    assert found["forecast_p85"][0] == "2027-01-08"
    assert found["forecast_p85"][1] == (
        "P85 stays 2027-01-08: the forecast (2027-01-06) moved 2 days, less than write.forecast_min_move "
        "(3 days)"
    )


def test_a_move_of_the_minimum_on_a_later_day_is_written_with_the_historys_reason() -> None:
    last = written("2026-12-20", "2027-01-08", datetime(2026, 12, 6, 23, 59, tzinfo=UTC))
    why = "throughput fell from 4.1 to 2.9 a week"
    found = forecast_dates(PAY3, forecast("2026-12-21", "2027-01-11"), WRITE, last, NOW, why)
    assert found["forecast_p85"] == ("2027-01-11", f"P85 moved from 2027-01-08 to 2027-01-11: {why}")
    assert found["forecast_p50"][0] == "2026-12-20", "one day is under the minimum: P50 stays"


def test_an_item_written_today_waits_for_the_next_utc_day() -> None:
    last = written("2026-12-20", "2027-01-08", datetime(2026, 12, 7, 0, 5, tzinfo=UTC))
    moved = forecast("2027-01-20", "2027-02-08")
    today = forecast_dates(PAY3, moved, WRITE, last, NOW)
    assert [value for value, _ in today.values()] == ["2026-12-20", "2027-01-08"]
    assert "at most once a day" in today["forecast_p85"][1]
    tomorrow = forecast_dates(PAY3, moved, WRITE, last, datetime(2026, 12, 8, 0, 1, tzinfo=UTC))
    assert [value for value, _ in tomorrow.values()] == ["2027-01-20", "2027-02-08"]


def test_a_larger_minimum_move_holds_longer() -> None:
    wide = WRITE.model_copy(update={"forecast_min_move": timedelta(days=14)})
    last = written("2026-12-20", "2027-01-08", NOW - timedelta(days=3))
    found = forecast_dates(PAY3, forecast("2027-01-02", "2027-01-22"), wide, last, NOW)
    assert found["forecast_p50"][0] == "2026-12-20", "13 days is under 14"
    assert found["forecast_p85"][0] == "2027-01-22", "14 days is the minimum"


@pytest.mark.parametrize("done", [True, False])
def test_a_done_milestone_or_one_without_a_forecast_wishes_the_dates_cleared(done: bool) -> None:
    last = written("2026-12-20", "2027-01-08", NOW)
    found = forecast_dates(PAY3, None, WRITE, last, NOW, done=done)
    assert [value for value, _ in found.values()] == [None, None]
    assert found["forecast_p50"][1] == ("done: no forecast date" if done else
                                        "no forecast: no tasks left to forecast from")  # fmt: skip


def test_only_the_configured_dates_are_wished() -> None:
    only = WriteConfig.model_validate({"forecast_fields": {"p85": "Forecast"}})
    assert list(forecast_dates(PAY3, forecast("2026-12-20", "2027-01-08"), only, Written(), NOW)) == [
        "forecast_p85"
    ]
    assert forecast_dates(PAY3, forecast("2026-12-20", "2027-01-08"), WriteConfig(), Written(), NOW) == {}


def test_a_held_date_plans_nothing_and_a_users_change_is_restored_to_it() -> None:
    """The wish keeps the day last written: the plan writes nothing while the item holds it, and puts
    it back when a user typed another day."""
    last = written("2026-12-20", "2027-01-08", NOW - timedelta(days=1))
    dates = forecast_dates(PAY3, forecast("2026-12-21", "2027-01-09"), WRITE, last, NOW)
    wish = Desired(
        PAY3,
        "PAY-3",
        fields={k: v for k, (v, _) in dates.items()},
        reasons={k: why for k, (_, why) in dates.items()},
    )
    holding = ItemState(PAY3, "PAY-3", fields={"forecast_p50": "2026-12-20", "forecast_p85": "2027-01-08"})
    quiet = plan("jira", {PAY3: wish}, {PAY3: holding}, last, managed_labels=(), opt_out_label="no-bridge")
    assert quiet.writes == []
    edited = ItemState(PAY3, "PAY-3", fields={"forecast_p50": "2026-12-20", "forecast_p85": "2027-03-01"})
    restored = plan("jira", {PAY3: wish}, {PAY3: edited}, last, managed_labels=(), opt_out_label="no-bridge")
    (write,) = restored.writes
    assert (write.field, write.value, write.previous) == ("forecast_p85", "2027-01-08", "2027-03-01")
    assert "restoring: someone changed it to '2027-03-01'" in write.reason
    assert restored.restores == [write]
    opted = ItemState(PAY3, "PAY-3", labels=frozenset({"no-bridge"}))
    skipped = plan("jira", {PAY3: wish}, {PAY3: opted}, last, managed_labels=(), opt_out_label="no-bridge")
    assert skipped.writes == [] and skipped.opted_out == [PAY3]


def test_clearing_takes_back_only_the_bridges_own_date() -> None:
    """A done milestone: the date the bridge wrote is cleared; one a user typed since stays theirs."""
    last = written("2026-12-20", "2027-01-08", NOW - timedelta(days=1))
    dates = forecast_dates(PAY3, None, WRITE, last, NOW, done=True)
    wish = Desired(
        PAY3,
        "PAY-3",
        fields={k: v for k, (v, _) in dates.items()},
        reasons={k: why for k, (_, why) in dates.items()},
        clear_own_only=frozenset(dates),
    )
    state = ItemState(PAY3, "PAY-3", fields={"forecast_p50": "2026-12-20", "forecast_p85": "2027-02-01"})
    found = plan("jira", {PAY3: wish}, {PAY3: state}, last, managed_labels=(), opt_out_label="no-bridge")
    assert [(w.field, w.value, w.previous, w.reason) for w in found.writes] == [
        ("forecast_p50", None, "2026-12-20", "done: no forecast date")
    ]
    never = plan("jira", {PAY3: wish}, {PAY3: state}, Written(), managed_labels=(), opt_out_label="no-bridge")
    assert never.writes == [], "dates the bridge never wrote are a user's"
