"""What each item of one tracker should hold, from the analysis: its value rank, its OKR link, the
bridge's labels, its place in the tracker's order and the bridge's comments (a milestone reached).
Pure: the report and snapshot in, `Desired` out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bridge.analytics.forecast import Forecast
from bridge.analytics.okr import KeyResultProgress, KeyResultStatus, catalogue
from bridge.analytics.ranks import Rank
from bridge.analytics.report import Report
from bridge.config import FORECAST_FIELDS, BridgeConfig, TrackerConfig, WriteConfig
from bridge.domain import (
    KeyResult,
    LinkOrigin,
    LinkTarget,
    Ref,
    Snapshot,
    StatusCategory,
    display_name,
    is_person_key,
)
from bridge.sync.plan import Desired
from bridge.text import plural
from bridge.written import STATUS_UPDATE_FIELD, Written, key_result_link_id


@dataclass(frozen=True, slots=True)
class Labels:
    """The bridge's label names, prefix included."""

    prefix: str
    bottleneck: str
    at_risk: str
    colours: Mapping[str, str]
    slipping: str = ""
    warnings: Mapping[str, str] = field(default_factory=dict)
    """Kind of item warning (`bridge.analytics.coherence.ItemWarning`) -> its label."""
    key_result: Mapping[KeyResultStatus, str] = field(default_factory=dict)
    """The status label of a key-result item, by its status (a met target carries the on-track one)."""

    @property
    def managed(self) -> frozenset[str]:
        """The labels the bridge manages by name: the only ones it removes without having recorded adding
        them (a label that merely starts with the prefix may be a user's)."""
        found = {
            self.bottleneck,
            self.at_risk,
            self.slipping,
            *self.warnings.values(),
            *self.key_result.values(),
        }
        return frozenset(found - {""})

    @classmethod
    def of(cls, config: BridgeConfig) -> Labels:
        push = config.push
        bottleneck = push.label_prefix + push.bottleneck_label
        at_risk = push.label_prefix + push.at_risk_label
        slipping = push.label_prefix + push.slipping_label
        warnings = push.warning_labels()
        on_track = push.label_prefix + push.kr_on_track_label
        key_result = {
            KeyResultStatus.ON_TRACK: on_track,
            KeyResultStatus.MET: on_track,
            KeyResultStatus.AT_RISK: push.label_prefix + push.kr_at_risk_label,
            KeyResultStatus.OFF_TRACK: push.label_prefix + push.kr_off_track_label,
        }
        colours = {
            bottleneck: push.bottleneck_color,
            at_risk: push.at_risk_color,
            slipping: push.slipping_color,
            warnings["needs_estimate"]: push.needs_estimate_color,
            warnings["too_many_in_progress"]: push.too_many_in_progress_color,
            warnings["ageing"]: push.ageing_color,
        }
        colours |= {label: push.kr_status_color for label in key_result.values()}
        return cls(push.label_prefix, bottleneck, at_risk, colours, slipping, warnings, key_result)


def desired_state(
    report: Report,
    snapshot: Snapshot,
    source: str,
    config: BridgeConfig,
    slipping: Mapping[Ref, str] | None = None,
    comments: Mapping[Ref, Mapping[str, str]] | None = None,
    *,
    written: Written | None = None,
    now: datetime | None = None,
    moves: Mapping[Ref, str] | None = None,
) -> dict[Ref, Desired]:
    """Every live milestone and task of tracker `source`, with what the bridge wants it to hold;
    `slipping` are the milestones whose forecast slipped, with why (`forecast_history.slipping`);
    `comments` the bridge's comments milestones should carry, by marker (`bridge.reached`).

    The forecast date fields follow `forecast_dates`: with `written` (what the bridge last wrote) and
    `now`, a date that moved less than `write.forecast_min_move`, or on an item written today, keeps the
    date last written; `moves` are the forecast history's reasons for each milestone's last move.

    Items the bridge has nothing to say about are included too (with empty wishes), so a label or value
    the bridge wrote earlier is taken back when it no longer applies.
    """
    tracker = config.tracker(source)
    write = tracker.write
    labels = Labels.of(config)
    ranks = {r.milestone: r for r in report.milestones}
    risks = {f.milestone: f for f in report.forecasts if f.at_risk}
    forecasts = {f.milestone: f for f in report.forecasts}
    okrs = catalogue(snapshot.objectives, snapshot.key_results, config.okrs)
    slow = {(v.team, v.work_type): v for v in report.bottlenecks if v.bottleneck}
    flagged: dict[Ref, list[tuple[str, str]]] = {}
    for warning in report.item_warnings:
        label = labels.warnings.get(warning.kind)
        if label:
            flagged.setdefault(warning.item, []).append((label, warning.reason))
    desired: dict[Ref, Desired] = {}
    for milestone in snapshot.milestones:
        if milestone.source != source or milestone.deleted:
            continue
        ref = Ref(source, milestone.remote_id)
        rank = ranks.get(ref)
        fields: dict[str, object] = {}
        reasons: dict[str, str] = {}
        if write.rank_field:
            fields["rank"] = rank_value(rank, write)
            reasons["rank"] = _rank_reason(rank, milestone.category)
        linked = _linked(report.links.get(ref, {}), okrs.key_results)
        if write.okr_field:
            fields["okr"] = "; ".join(kr.title for _, kr in linked) or None
            reasons["okr"] = _okr_reason(report.links.get(ref, {}), linked)
        for logical, (value, why) in forecast_dates(
            ref,
            forecasts.get(ref) if milestone.category is not StatusCategory.DONE else None,
            write,
            written or Written(),
            now,
            (moves or {}).get(ref),
            done=milestone.category is StatusCategory.DONE,
        ).items():
            fields[logical] = value
            reasons[logical] = why
        links: dict[str, LinkTarget] = {}
        if write.okr_links:
            for kr_ref, kr in linked:
                # A key result held in this same tracker (an Asana goal, say) is linked natively, so it
                # needs no address; any other needs one to be clickable.
                if kr.url or kr_ref.source == source:
                    gid = key_result_link_id(kr_ref)
                    links[gid] = LinkTarget(gid, kr.url or "", f"Key result: {kr.title}")
                    reasons[gid] = f"the key result it moves, linked by {report.links[ref][kr_ref].value}"
        wanted: set[str] = set()
        risk = risks.get(ref)
        if write.labels and risk is not None:
            wanted.add(labels.at_risk)
            reasons[labels.at_risk] = _risk_reason(risk)
        slip = (slipping or {}).get(ref)
        if write.labels and slip is not None and milestone.category is not StatusCategory.DONE:
            wanted.add(labels.slipping)
            reasons[labels.slipping] = slip
        if write.labels and milestone.category is not StatusCategory.DONE:
            for label, reason in flagged.get(ref, ()):
                wanted.add(label)
                reasons[label] = reason
        wished = dict((comments or {}).get(ref, {}))
        for marker in wished:
            reasons[marker] = "milestone reached: announced once, in a comment"
        desired[ref] = Desired(
            item=ref,
            key=milestone.key,
            fields=fields,
            labels=frozenset(wanted),
            links=links,
            order=(rank.rank,) if write.native_order and rank is not None else None,
            reasons=reasons,
            name=display_name(milestone.key, milestone.title),
            comments=wished,
            clear_own_only=frozenset(FORECAST_FIELDS) & frozenset(fields),
        )
    for task in snapshot.tasks:
        if task.source != source or task.deleted:
            continue
        ref = Ref(source, task.remote_id)
        fields = {}
        reasons = {}
        parent = ranks.get(Ref(source, task.milestone_id)) if task.milestone_id is not None else None
        if write.rank_field and write.tasks_inherit:
            fields["rank"] = rank_value(parent, write)
            reasons["rank"] = (
                f"inherits {fields['rank']} from its milestone {parent.key} ({write.rank_mode})"
                if parent is not None
                else "no ranked milestone"
            )
        wanted = set()
        verdict = slow.get((task.team or "", task.work_type or ""))
        if write.labels and verdict is not None and task.category is not StatusCategory.DONE:
            wanted.add(labels.bottleneck)
            reasons[labels.bottleneck] = f"a bottleneck in team {verdict.team}: {verdict.reason}"
        if write.labels and task.category is not StatusCategory.DONE:
            for label, reason in flagged.get(ref, ()):
                wanted.add(label)
                reasons[label] = reason
        desired[ref] = Desired(
            item=ref,
            key=task.key,
            fields=fields,
            labels=frozenset(wanted),
            order=(parent.rank,) if write.native_order and parent is not None else None,
            reasons=reasons,
            name=display_name(task.key, task.title),
        )
    for kr, progress in key_result_progress(report, snapshot, source):
        ref = Ref(source, kr.remote_id)
        if ref not in desired:
            desired[ref] = key_result_wish(ref, kr, progress, tracker, labels)
    return desired


def key_result_progress(
    report: Report, snapshot: Snapshot, source: str
) -> list[tuple[KeyResult, KeyResultProgress | None]]:
    """The key results tracker `source` holds (Jira issues, Trello cards, Asana goals), each with its
    progress and status in the report (None when the report does not have it)."""
    found = {kr.key_result: kr for objective in report.okrs for kr in objective.key_results}
    return [
        (kr, found.get(Ref(source, kr.remote_id)))
        for kr in sorted(snapshot.key_results, key=lambda k: k.remote_id)
        if kr.source == source
    ]


STATUS_TYPES = {
    KeyResultStatus.ON_TRACK: "on_track",
    KeyResultStatus.AT_RISK: "at_risk",
    KeyResultStatus.OFF_TRACK: "off_track",
    KeyResultStatus.MET: "achieved",
}
"""The status type of the status update an Asana goal gets for each status."""


def key_result_wish(
    ref: Ref, kr: KeyResult, progress: KeyResultProgress | None, tracker: TrackerConfig, labels: Labels
) -> Desired:
    """What a key-result item should hold: an Asana goal, a status update of its status (`on_track`,
    `at_risk`, `off_track`, `achieved`), posted when it changes and never taken back; a Jira issue or
    Trello card, its status label, or with `write.kr_status_field` its status in that field (`on track`,
    `at risk`, `off track`, `met`), taken back while it has no status. Never the field its current value is
    read from (`bridge check`)."""
    write = tracker.write
    status = progress.status if progress is not None else None
    reason = f"{status.words}: {progress.status_reason}" if status and progress else ""
    fields: dict[str, object] = {}
    reasons: dict[str, str] = {}
    wanted: set[str] = set()
    if tracker.status_updates:
        fields[STATUS_UPDATE_FIELD] = STATUS_TYPES[status] if status is not None else None
        reasons[STATUS_UPDATE_FIELD] = reason or "no status"
    elif write.kr_status_field:
        fields["kr_status"] = status.words if status is not None else None
        reasons["kr_status"] = reason or "no status"
    elif write.labels and status is not None:
        label = labels.key_result[status]
        wanted.add(label)
        reasons[label] = reason
    # A Jira key result's address ends with the key people use (PAY-9); elsewhere the id is all there is.
    last = (kr.url or "").rstrip("/").rsplit("/", 1)[-1]
    key = last if is_person_key(last) else kr.remote_id
    return Desired(
        item=ref,
        key=key,
        fields=fields,
        labels=frozenset(wanted),
        reasons=reasons,
        name=f"key result {display_name(key, kr.title)}",
    )


def rank_value(rank: Rank | None, write: WriteConfig) -> float | int | str | None:
    """What the rank field holds for a milestone ranked `rank` (None: not ranked), by `write.rank_value`.

    A score is kept to four significant digits, so it reads as the number the ranking shows and stays
    put until the milestone's own value or effort changes; a band names the first cut-off the position
    is within ("top 5"), else "later".
    """
    if rank is None:
        return None
    mode = write.rank_mode
    if mode == "position":
        return rank.rank
    if mode == "score":
        return float(f"{rank.score:.4g}") if rank.score is not None else None
    within = next((cut for cut in write.rank_bands if rank.rank <= cut), None)
    return f"top {within}" if within is not None else "later"


def managed_fields(tracker: TrackerConfig) -> dict[str, str]:
    """Logical field -> the tracker field the config names for it."""
    return tracker.write.managed_fields()


def forecast_dates(
    milestone: Ref,
    forecast: Forecast | None,
    write: WriteConfig,
    written: Written,
    now: datetime | None,
    moved_because: str | None = None,
    *,
    done: bool = False,
) -> dict[str, tuple[str | None, str]]:
    """Logical date field (`forecast_p50`, `forecast_p85`) -> (the UTC day it should hold as
    `YYYY-MM-DD`, or None to clear it; why), for the date fields `write` names.

    An open milestone's forecast day is wished for only when it moved at least `write.forecast_min_move`
    from the day the bridge last wrote there (its `written` row) and that row was not stamped on `now`'s
    UTC day; otherwise the wish is the day last written, so nothing is planned and a date wobbling by a
    day or two never rewrites the field (nor notifies anyone). A done milestone, or one without a
    forecast, wishes the field empty: the plan clears the bridge's own value only. Without `now` the
    once-a-day rule is not applied (`bridge explain` shows the forecast itself).
    """
    found: dict[str, tuple[str | None, str]] = {}
    for logical, label in FORECAST_FIELDS.items():
        if write.field_named(logical) is None:
            continue
        when = None
        if forecast is not None:
            when = forecast.p50 if logical == "forecast_p50" else forecast.high
        if when is None:
            why = "done: no forecast date" if done else "no forecast: no tasks left to forecast from"
            found[logical] = (None, why)
            continue
        day = _utc_day(when)
        assert forecast is not None
        because = moved_because or forecast.explanation
        last = written.get(milestone, logical)
        held = _held_day(last.value if last is not None else None)
        if last is None or held is None:
            found[logical] = (day, f"{label} forecast {day}: {because}")
            continue
        if held == day:
            found[logical] = (day, f"{label} forecast {day}, as written")
            continue
        move = abs(date.fromisoformat(day) - date.fromisoformat(held))
        if move < write.forecast_min_move:
            found[logical] = (
                held,
                f"{label} stays {held}: the forecast ({day}) moved {plural(move.days, 'day')}, less than "
                f"write.forecast_min_move ({_days(write.forecast_min_move)})",
            )
        elif now is not None and _utc_day(last.at) >= _utc_day(now):
            found[logical] = (
                held,
                f"{label} stays {held} until tomorrow: the forecast moved to {day}, and this item "
                "was written today (forecast dates are written at most once a day)",
            )
        else:
            found[logical] = (day, f"{label} moved from {held} to {day}: {because}")
    return found


def _utc_day(moment: datetime) -> str:
    """The UTC day of `moment` as `YYYY-MM-DD` (a time without a zone is taken as UTC, as stored)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date().isoformat()


def _held_day(value: object) -> str | None:
    """The day a `written` value names (`YYYY-MM-DD`), or None when it names none."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return plural(int(days), "day") if days.is_integer() else f"{days:.1f} days"


def _linked(
    links: Mapping[Ref, LinkOrigin], key_results: Mapping[Ref, KeyResult]
) -> list[tuple[Ref, KeyResult]]:
    found = [(ref, key_results[ref]) for ref in links if ref in key_results]
    return sorted(found, key=lambda pair: (-pair[1].weight, pair[1].title, str(pair[0])))


def _rank_reason(rank: Rank | None, category: StatusCategory) -> str:
    if rank is not None:
        return rank.explanation
    if category is StatusCategory.DONE:
        return "done: no rank"
    return "not ranked"


def _okr_reason(links: Mapping[Ref, LinkOrigin], linked: list[tuple[Ref, KeyResult]]) -> str:
    if not linked:
        return "linked to no key result"
    origins = sorted({links[ref].value for ref, _ in linked})
    what = "the key result it moves" if len(linked) == 1 else "the key results it moves"
    return f"{what}, linked by {' and '.join(origins)}"


def _risk_reason(risk: Forecast) -> str:
    return risk.explanation
