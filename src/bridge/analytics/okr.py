"""OKR links, key-result weights for ranking, text-similarity suggestions and key-result progress.

Links come from the tracker (a Jira issue link, an Asana goal) and from the admin's `okr_rules`
(label, epic, project, section, ... -> key result), which connectors match against each item's facts
while pulling (`rule_links` here does the same for any caller holding facts) and store with origin
`rule`; an admin's confirmation of a suggestion is stored with origin `confirmed`. Suggestions
themselves are advice and count for nothing until confirmed.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from bridge.config import CONFIG_SOURCE, OkrRule, OkrsConfig
from bridge.domain import (
    KeyResult,
    KeyResultLink,
    LinkOrigin,
    Milestone,
    Objective,
    Ref,
    StatusCategory,
    display_name,
)
from bridge.text import plural

if TYPE_CHECKING:  # forecasts rank milestones, and ranks read OKR weights from here
    from bridge.analytics.forecast import Forecast
from bridge.mapping import Facts, matches

_PRECEDENCE = {
    LinkOrigin.CONFIRMED: 3,
    LinkOrigin.TRACKER: 2,
    LinkOrigin.RULE: 1,
    LinkOrigin.SUGGESTED: 0,
}


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Objectives and key results by reference, with the keywords that help suggestions."""

    objectives: dict[Ref, Objective]
    key_results: dict[Ref, KeyResult]
    keywords: dict[Ref, tuple[str, ...]] = field(default_factory=dict)

    def objective_of(self, key_result: KeyResult) -> Ref:
        return Ref(key_result.source, key_result.objective_id)


def catalogue(
    objectives: Iterable[Objective], key_results: Iterable[KeyResult], okrs: OkrsConfig | None = None
) -> Catalogue:
    """The store's objectives and key results, plus the config's (the config's keywords kept).

    A key result's period ends on its objective's `period_end` in the config, else on `[okrs]
    period_end`; a tracker's key result that carries its own period end keeps it.
    """
    default_end = okrs.period_end if okrs else None
    found_objectives = {Ref(o.source, o.remote_id): o for o in objectives}
    found_results = {
        Ref(k.source, k.remote_id): (
            dataclasses.replace(k, period_end=default_end) if k.period_end is None and default_end else k
        )
        for k in key_results
    }
    keywords: dict[Ref, tuple[str, ...]] = {}
    for objective in okrs.objectives if okrs else ():
        found_objectives.setdefault(
            Ref(CONFIG_SOURCE, objective.id),
            Objective(CONFIG_SOURCE, objective.id, objective.title, objective.weight, objective.url),
        )
        for kr in objective.key_results:
            key = Ref(CONFIG_SOURCE, kr.id)
            keywords[key] = tuple(kr.keywords)
            found_results.setdefault(
                key,
                KeyResult(
                    source=CONFIG_SOURCE,
                    remote_id=kr.id,
                    objective_id=objective.id,
                    title=kr.title,
                    target=kr.target,
                    current=kr.current,
                    start=kr.start,
                    unit=kr.unit,
                    weight=kr.weight,
                    url=kr.url,
                    period_end=objective.period_end or default_end,
                ),
            )
    return Catalogue(found_objectives, found_results, keywords)


def effective_links(links: Iterable[KeyResultLink]) -> dict[Ref, dict[Ref, LinkOrigin]]:
    """Milestone -> key result -> the strongest origin; suggestions not yet confirmed are left out."""
    linked: defaultdict[Ref, dict[Ref, LinkOrigin]] = defaultdict(dict)
    for link in links:
        if link.origin is LinkOrigin.SUGGESTED:
            continue
        known = linked[link.milestone].get(link.key_result)
        if known is None or _PRECEDENCE[link.origin] > _PRECEDENCE[known]:
            linked[link.milestone][link.key_result] = link.origin
    return dict(linked)


def rule_target(key_result: str) -> Ref:
    """An `okr_rules` target as a reference: `TRACKER:ID` for a tracker's key result, else the config's."""
    if ":" in key_result:
        source, remote_id = key_result.split(":", 1)
        return Ref(source, remote_id)
    return Ref(CONFIG_SOURCE, key_result)


def rule_links(milestone: Ref, facts: Facts, rules: Sequence[OkrRule]) -> list[KeyResultLink]:
    """The links an admin's rules give a milestone (every matching rule counts), with origin `rule`."""
    targets = dict.fromkeys(rule_target(rule.key_result) for rule in rules if matches(rule, facts))
    return [KeyResultLink(milestone, target, LinkOrigin.RULE) for target in targets]


# --- weights for rank_strategy = "okr" ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OkrWeight:
    score: float
    explanation: str


def okr_weights(links: Mapping[Ref, Mapping[Ref, LinkOrigin]], okrs: Catalogue) -> dict[Ref, OkrWeight]:
    """Each linked milestone's share of the OKR set's weight.

    A key result's share is its weight among its objective's key results times its objective's weight
    among all objectives, so an objective with many key results weighs no more than one with a single
    one; a milestone moving several key results adds their shares.
    """
    objective_total = sum(o.weight for o in okrs.objectives.values()) or 1.0
    kr_totals: defaultdict[Ref, float] = defaultdict(float)
    for kr in okrs.key_results.values():
        kr_totals[okrs.objective_of(kr)] += kr.weight
    weights: dict[Ref, OkrWeight] = {}
    for milestone, targets in links.items():
        parts: list[str] = []
        score = 0.0
        for target in sorted(targets, key=str):
            if target not in okrs.key_results:
                continue
            kr = okrs.key_results[target]
            objective_ref = okrs.objective_of(kr)
            objective = okrs.objectives.get(objective_ref)
            objective_weight = objective.weight if objective else 1.0
            share = kr.weight / kr_totals[objective_ref] * objective_weight / objective_total
            score += share
            parts.append(
                f"{kr.remote_id} ({kr.weight:g} of {kr_totals[objective_ref]:g} in objective "
                f"{objective_ref.remote_id}, weighing {objective_weight:g} of {objective_total:g})"
                f" = {share:.3f}"
            )
        if parts:
            weights[milestone] = OkrWeight(score, " + ".join(parts))
    return weights


# --- suggestions by text similarity ------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
_STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "into", "is",
    "it", "its", "of", "on", "or", "our", "than", "that", "the", "their", "them", "then", "there",
    "these", "this", "to", "was", "we", "were", "will", "with", "within", "without", "more", "less",
    "new", "all", "any", "per", "via", "up", "down", "out", "over", "under", "raise", "cut", "make",
    "get", "let",
})  # fmt: skip


def terms(text: str) -> list[str]:
    """Words of a title, case-folded, stop words dropped, plural and -ing/-ed endings trimmed."""
    found = []
    for word in _WORD.findall(text.casefold()):
        if word in _STOP_WORDS or (len(word) < 2 and not word.isdigit()):
            continue
        found.append(_stem(word))
    return found


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class Suggestion:
    milestone: Ref
    key_result: Ref
    score: float
    shared_terms: tuple[str, ...]


def _vector(words: Sequence[str], idf: Mapping[str, float]) -> dict[str, float]:
    counts = Counter(words)
    vector = {word: (1.0 + math.log(n)) * idf[word] for word, n in counts.items()}
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {word: v / norm for word, v in vector.items()} if norm else {}


def suggest(
    milestones: Sequence[Milestone],
    okrs: Catalogue,
    *,
    min_score: float,
    corpus: Iterable[Milestone] = (),
    limit: int = 3,
) -> dict[Ref, list[Suggestion]]:
    """Key results whose title and keywords resemble each milestone's title (TF-IDF cosine, 0 to 1).

    Document frequencies count the key results, the milestones asked about and `corpus` (the other
    milestones), so words every milestone uses ("release", "v2") weigh little. At most `limit`
    suggestions per milestone, best first, none below `min_score`.
    """
    kr_words = {
        key: terms(" ".join((kr.title, *okrs.keywords.get(key, ()))))
        for key, kr in sorted(okrs.key_results.items(), key=lambda item: str(item[0]))
    }
    asked = {Ref(m.source, m.remote_id): terms(m.title) for m in milestones}
    others = [terms(m.title) for m in corpus if Ref(m.source, m.remote_id) not in asked]
    documents = [*kr_words.values(), *asked.values(), *others]
    frequency = Counter(word for words in documents for word in set(words))
    idf = {word: math.log((1 + len(documents)) / (1 + df)) + 1.0 for word, df in frequency.items()}
    postings: defaultdict[str, list[tuple[Ref, float]]] = defaultdict(list)
    for key, words in kr_words.items():
        for word, weight in _vector(words, idf).items():
            postings[word].append((key, weight))
    found: dict[Ref, list[Suggestion]] = {}
    for milestone, words in asked.items():
        query = _vector(words, idf)
        scores: defaultdict[Ref, float] = defaultdict(float)
        shared: defaultdict[Ref, list[str]] = defaultdict(list)
        for word, weight in query.items():
            for key, kr_weight in postings.get(word, ()):
                scores[key] += weight * kr_weight
                shared[key].append(word)
        ranked = sorted(
            (
                Suggestion(milestone, key, round(score, 6), tuple(sorted(shared[key])))
                for key, score in scores.items()
            ),
            key=lambda s: (-s.score, str(s.key_result)),
        )
        kept = [s for s in ranked if s.score >= min_score][:limit]
        if kept:
            found[milestone] = kept
    return found


def suggest_for_unlinked(
    milestones: Iterable[Milestone],
    links: Mapping[Ref, Mapping[Ref, LinkOrigin]],
    okrs: Catalogue,
    *,
    min_score: float,
) -> list[Suggestion]:
    """Suggestions for the open milestones no link (but a suggestion) ties to a key result, ordered by
    milestone key, best first within each; `links` are the effective ones."""
    live = [m for m in milestones if not m.deleted]
    unlinked = sorted(
        (
            m
            for m in live
            if m.category is not StatusCategory.DONE and not links.get(Ref(m.source, m.remote_id))
        ),
        key=lambda m: (m.key, m.source, m.remote_id),
    )
    found = suggest(unlinked, okrs, min_score=min_score, corpus=live)
    return [s for m in unlinked for s in found.get(Ref(m.source, m.remote_id), ())]


# --- progress ----------------------------------------------------------------------------------------


class KeyResultStatus(enum.StrEnum):
    """Where a key result stands against its period's end, from its linked open milestones' forecasts."""

    ON_TRACK = "on_track"
    """Every linked open milestone's P85 finish is on or before the period's last day."""
    AT_RISK = "at_risk"
    """Some P85 finish is after the period's end, but every P50 is on or before it."""
    OFF_TRACK = "off_track"
    """Some P50 finish is after the period's end (or the period is over and the target not met)."""
    MET = "met"
    """The target is met: its metric reached the target, or (without one) every linked milestone is done."""

    @property
    def words(self) -> str:
        """How a person reads it: `on track`, `at risk`, `off track`, `met`."""
        return self.value.replace("_", " ")


@dataclass(frozen=True, slots=True)
class LinkedMilestone:
    milestone: Ref
    key: str
    title: str
    origin: LinkOrigin
    done: bool
    value: float | None
    tasks_done: int = 0
    tasks_total: int = 0
    """The milestone's live tasks, and how many of them are done (partial credit while it is open)."""

    @property
    def name(self) -> str:
        return display_name(self.key, self.title)

    @property
    def credit(self) -> float:
        """The share of the milestone counted as done: 1 when done, else the share of its tasks done."""
        if self.done:
            return 1.0
        return self.tasks_done / self.tasks_total if self.tasks_total else 0.0


@dataclass(frozen=True, slots=True)
class KeyResultProgress:
    key_result: Ref
    title: str
    weight: float
    progress: float | None
    basis: str
    """`metric` (current against target), `milestones` (share of linked value done) or `none`."""
    explanation: str
    milestones: tuple[LinkedMilestone, ...]
    status: KeyResultStatus | None = None
    """On track / at risk / off track / met; None when it cannot be told (`status_reason` says why)."""
    status_reason: str = ""
    period_end: date | None = None


@dataclass(frozen=True, slots=True)
class ObjectiveProgress:
    objective: Ref
    title: str
    weight: float
    progress: float | None
    key_results: tuple[KeyResultProgress, ...]


def metric_progress(kr: KeyResult) -> float | None:
    """(current - start) / (target - start), held to 0..1; None without a metric."""
    if kr.current is None or kr.target is None or kr.target == kr.start:
        return None
    return min(1.0, max(0.0, (kr.current - kr.start) / (kr.target - kr.start)))


def milestone_progress(linked: Sequence[LinkedMilestone]) -> tuple[float | None, str]:
    """The share of linked value that is done, with how it was reckoned.

    A done milestone counts its whole value; an open one counts its value times the share of its tasks
    done (3 of 4 tasks done: three quarters of its value), so work under way shows before the milestone
    closes. Milestones without a value weigh the mean of the values that are set, or 1 each when none is.
    """
    if not linked:
        return None, "no linked milestones"
    values = [m.value for m in linked if m.value is not None and m.value > 0]
    stand_in = sum(values) / len(values) if values else 1.0
    weights = [m.value if m.value is not None and m.value > 0 else stand_in for m in linked]
    done = sum(w * m.credit for w, m in zip(weights, linked, strict=True))
    total = sum(weights)
    count_done = sum(1 for m in linked if m.done)
    partial = [m for m in linked if not m.done and m.tasks_done]
    unvalued = len(linked) - len(values)
    if not values:
        text = f"{count_done} of {len(linked)} linked milestones done (none has a value)"
    else:
        text = f"value {done:g} of {total:g} done ({count_done} of {len(linked)} linked milestones)"
    if partial:
        text += "; under way, by the share of their tasks done: " + ", ".join(
            f"{m.name} {m.tasks_done} of {plural(m.tasks_total, 'task')}" for m in partial
        )
    if values and unvalued:
        text += f"; {unvalued} without a value counted at the mean value {stand_in:g}"
    return done / total, text


def key_result_status(
    kr: KeyResult,
    progress: float | None,
    basis: str,
    linked: Sequence[LinkedMilestone],
    forecasts: Mapping[Ref, Forecast],
    now: datetime,
) -> tuple[KeyResultStatus | None, str]:
    """The key result's status against its period's end, with the reason naming what decides it.

    A met target is `met` (not "on track": nothing is left to finish, and the report says so apart from
    the key results still under way). Otherwise the linked open milestones' forecasts decide: the latest
    P50 after the period's last day is off track; else the latest P85 after it is at risk; else on
    track, named by the latest P85. A period already over with the target not met is off track. No
    period end, no open milestone or an open milestone without a forecast gives no status, saying why.
    """
    if (basis == "metric" and progress is not None and progress >= 1.0) or (
        basis == "milestones" and linked and all(m.done for m in linked)
    ):
        if basis == "metric":
            return KeyResultStatus.MET, "its target is met"
        return KeyResultStatus.MET, (
            f"no metric, and every linked milestone is done ({plural(len(linked), 'milestone')})"
        )
    end = kr.period_end
    if end is None:
        return None, "no period end: set period_end on its objective in [okrs]"
    today = now.date()
    if today > end:
        over = (today - end).days
        return KeyResultStatus.OFF_TRACK, (
            f"the period ended {end.isoformat()}, {plural(over, 'day')} ago, and the target is not met"
        )
    open_ones = [m for m in linked if not m.done]
    if not open_ones:
        return None, "no open milestone is linked to it, so nothing forecasts when it is met"
    dated: list[tuple[LinkedMilestone, Forecast]] = []
    for milestone in open_ones:
        found = forecasts.get(milestone.milestone)
        if found is None or found.p50 is None:
            why = found.explanation if found is not None else "it is not forecast"
            return None, f"{milestone.name} has no forecast: {why}"
        dated.append((milestone, found))
    ends = f"the period ends {end.isoformat()}"
    late_median = [(m, f) for m, f in dated if f.p50 is not None and f.p50.date() > end]
    if late_median:
        milestone, found = max(late_median, key=lambda pair: (_day(pair[1].p50), pair[0].key))
        return KeyResultStatus.OFF_TRACK, _against(milestone, "P50", found.p50, end, ends)
    late_high = [(m, f) for m, f in dated if f.high is None or f.high.date() > end]
    if late_high:
        milestone, found = max(late_high, key=lambda pair: (_day(pair[1].high), pair[0].key))
        if found.high is None:
            return KeyResultStatus.AT_RISK, (
                f"{milestone.name}: its P85 is beyond the forecast horizon, after {ends}"
            )
        return KeyResultStatus.AT_RISK, _against(milestone, "P85", found.high, end, ends)
    milestone, found = max(dated, key=lambda pair: (_day(pair[1].high), pair[0].key))
    reason = _against(milestone, "P85", found.high, end, ends)
    if len(dated) > 1:
        reason += f" (the latest of its {len(dated)} open milestones)"
    return KeyResultStatus.ON_TRACK, reason


def _day(when: datetime | None) -> date:
    return when.date() if when is not None else date.max


def _against(milestone: LinkedMilestone, which: str, when: datetime | None, end: date, ends: str) -> str:
    day = _day(when)
    gap = (day - end).days
    if gap > 0:
        relation = f"is {plural(gap, 'day')} after {ends}"
    elif gap < 0:
        relation = f"is {plural(-gap, 'day')} before {ends}"
    else:
        relation = "is the period's last day"
    return f"{milestone.name}: {which} {day.isoformat()} {relation}"


def okr_tree(
    okrs: Catalogue,
    links: Mapping[Ref, Mapping[Ref, LinkOrigin]],
    milestones: Mapping[Ref, Milestone],
    *,
    tasks_done: Mapping[Ref, tuple[int, int]] | None = None,
    forecasts: Iterable[Forecast] = (),
    now: datetime | None = None,
) -> list[ObjectiveProgress]:
    """Objectives > key results > linked milestones, each with its progress; with `now`, each key
    result's status from `forecasts` (see `key_result_status`). `tasks_done` is each milestone's
    (tasks done, live tasks), for partial credit."""
    counts = tasks_done or {}
    by_milestone = {f.milestone: f for f in forecasts}
    linked_to: defaultdict[Ref, list[LinkedMilestone]] = defaultdict(list)
    for milestone_key, targets in links.items():
        milestone = milestones.get(milestone_key)
        if milestone is None:
            continue
        finished, total = counts.get(milestone_key, (0, 0))
        for target, origin in targets.items():
            linked_to[target].append(
                LinkedMilestone(
                    milestone_key,
                    milestone.key,
                    milestone.title,
                    origin,
                    milestone.category is StatusCategory.DONE,
                    milestone.value,
                    finished,
                    total,
                )
            )
    by_objective: defaultdict[Ref, list[KeyResultProgress]] = defaultdict(list)
    for key, kr in sorted(okrs.key_results.items(), key=lambda item: str(item[0])):
        linked = tuple(sorted(linked_to.get(key, ()), key=lambda m: (m.key, str(m.milestone))))
        found = _kr_progress(key, kr, linked)
        if now is not None:
            status, reason = key_result_status(kr, found.progress, found.basis, linked, by_milestone, now)
            found = dataclasses.replace(found, status=status, status_reason=reason, period_end=kr.period_end)
        by_objective[okrs.objective_of(kr)].append(found)
    tree = []
    for objective_key in sorted(set(by_objective) | set(okrs.objectives), key=str):
        objective = okrs.objectives.get(objective_key)
        results = tuple(by_objective.get(objective_key, ()))
        measured = [r for r in results if r.progress is not None]
        weight_sum = sum(r.weight for r in measured)
        progress = sum(r.weight * (r.progress or 0.0) for r in measured) / weight_sum if weight_sum else None
        tree.append(
            ObjectiveProgress(
                objective_key,
                objective.title if objective else objective_key.remote_id,
                objective.weight if objective else 1.0,
                progress,
                results,
            )
        )
    return tree


def _kr_progress(key: Ref, kr: KeyResult, linked: tuple[LinkedMilestone, ...]) -> KeyResultProgress:
    metric = metric_progress(kr)
    if metric is not None:
        unit = kr.unit or ""
        explanation = f"current {kr.current:g}{unit} from {kr.start:g}{unit} towards {kr.target:g}{unit}"
        return KeyResultProgress(key, kr.title, kr.weight, metric, "metric", explanation, linked)
    progress, explanation = milestone_progress(linked)
    basis = "milestones" if progress is not None else "none"
    return KeyResultProgress(key, kr.title, kr.weight, progress, basis, explanation, linked)
