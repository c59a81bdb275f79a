"""Key results and objectives drafted from planned milestones: the method's reverse path.

When the next deliveries are planned and ranked before the key results are written, the milestones say
which outcomes the next cycle pursues. `draft_okrs` groups milestones that aim at the same outcome and
drafts, for each group, a key result (a title from what the group shares, the kind of measure its text
names, its members in rank order with their values, its value and share of the portfolio's, and why its
members were grouped); then it drafts objectives over related key results. Highest value first.

How milestones are grouped (offline, explainable, deterministic):
- each milestone is a bag of weighted features: the stems of its title (twice), description, and its
  tasks' titles (half), its labels and its tasks' labels (as labels and as words), its team, and the
  measure kinds its words cue (`bridge.analytics.measures`);
- weights are TF-IDF over the milestones considered and the rest of the portfolio, so a word every
  milestone uses ("release", the product's name) counts for nothing; a feature of one milestone alone
  links nothing and is left out;
- average-linkage agglomerative clustering on cosine similarity, the most similar pair of groups
  merged first, until no two groups have a mean similarity of at least `threshold`.
Pure: no I/O; `now` stamps the result and `seed` breaks exact ties between equally similar pairs.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from bridge.analytics.measures import BY_KIND, FAMILIES, UNMEASURED_TITLE, cue_counts, cue_words
from bridge.analytics.words import Vocabulary
from bridge.domain import LinkOrigin, Milestone, Ref, Snapshot, StatusCategory, require_utc

DEFAULT_THRESHOLD = 0.12
"""Mean cosine similarity under which two groups stay apart."""
OBJECTIVE_THRESHOLD = 0.05
"""The same, for key results without a measure kind, between their groups' centroids."""
SELECTIONS = ("unlinked", "open", "all")

_TITLE, _DESCRIPTION, _TASK, _LABEL, _TEAM, _MEASURE = 2.0, 1.0, 0.5, 2.0, 0.5, 2.5


@dataclass(frozen=True, slots=True)
class PlannedMilestone:
    """A milestone and what its tasks add: their titles and labels."""

    milestone: Milestone
    task_titles: tuple[str, ...] = ()
    task_labels: tuple[str, ...] = ()

    @property
    def ref(self) -> Ref:
        return Ref(self.milestone.source, self.milestone.remote_id)


@dataclass(frozen=True, slots=True)
class DraftMember:
    milestone: Ref
    key: str
    title: str
    team: str | None
    value: float | None
    rank: int | None
    """Its place among the portfolio's open milestones by value (1 = most valuable), when it has one."""


@dataclass(frozen=True, slots=True)
class DraftKeyResult:
    id: str
    title: str
    """With `{target}` where the owner's number goes (see `title_for`)."""
    measure: str | None
    unit: str | None
    members: tuple[DraftMember, ...]
    value: float
    share: float
    """Of the value of every open milestone, 0..1."""
    terms: tuple[str, ...]
    reasons: tuple[str, ...]
    objective_id: str = ""

    def title_for(self, target: float | None = None) -> str:
        return draft_title(self.title, target)


def draft_title(template: str, target: float | None = None) -> str:
    """A drafted title with its target: the number given, or `N` where the owner still has to set one."""
    return template.replace("{target}", f"{target:g}" if target is not None else "N")


@dataclass(frozen=True, slots=True)
class DraftObjective:
    id: str
    title: str
    key_results: tuple[str, ...]
    value: float
    share: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Drafts:
    made_at: datetime
    considered: int
    portfolio_value: float
    key_results: tuple[DraftKeyResult, ...]
    objectives: tuple[DraftObjective, ...]
    ungrouped: tuple[DraftMember, ...] = field(default=())
    """Milestones considered that share too little with any other to be grouped."""


# --- choosing the milestones -----------------------------------------------------------------------------


def planned_milestones(
    snapshot: Snapshot,
    links: Mapping[Ref, Mapping[Ref, LinkOrigin]],
    *,
    which: str = "unlinked",
    team: str | None = None,
) -> list[PlannedMilestone]:
    """The milestones to draft from, with their tasks' titles and labels.

    `which`: `unlinked` (open milestones that move no key result), `open`, or `all` (done ones too)."""
    if which not in SELECTIONS:
        raise ValueError(f"milestones must be one of {', '.join(SELECTIONS)}, not {which!r}")
    titles: defaultdict[Ref, list[str]] = defaultdict(list)
    labels: defaultdict[Ref, list[str]] = defaultdict(list)
    for task in snapshot.tasks:
        if task.milestone_id is None or task.deleted:
            continue
        ref = Ref(task.source, task.milestone_id)
        titles[ref].append(task.title)
        labels[ref].extend(task.labels)
    chosen = []
    for milestone in sorted(snapshot.milestones, key=lambda m: (m.source, m.key, m.remote_id)):
        ref = Ref(milestone.source, milestone.remote_id)
        if milestone.deleted or (team is not None and milestone.team != team):
            continue
        is_open = milestone.category is not StatusCategory.DONE
        if (which != "all" and not is_open) or (which == "unlinked" and links.get(ref)):
            continue
        chosen.append(PlannedMilestone(milestone, tuple(titles[ref]), tuple(labels[ref])))
    return chosen


# --- features --------------------------------------------------------------------------------------------


@dataclass
class _Document:
    planned: PlannedMilestone
    counts: Mapping[str, float]
    words: set[str]
    title_words: set[str]
    labels: set[str]


def _document(planned: PlannedMilestone, vocabulary: Vocabulary) -> _Document:
    milestone = planned.milestone
    counts: defaultdict[str, float] = defaultdict(float)

    def add(stems: Iterable[str], weight: float) -> None:
        for word in stems:
            counts[word] += weight

    title_stems = vocabulary.stems(milestone.title)
    add(title_stems, _TITLE)
    text_stems = vocabulary.stems(milestone.description or "")
    add(text_stems, _DESCRIPTION)
    task_stems = [s for title in planned.task_titles for s in vocabulary.stems(title)]
    add(task_stems, _TASK)
    labels = {
        label.strip().casefold() for label in (*milestone.labels, *planned.task_labels) if label.strip()
    }
    for label in labels:
        counts[f"label:{label}"] += _LABEL
        add(vocabulary.stems(label), _DESCRIPTION)
    if milestone.team:
        counts[f"team:{milestone.team}"] += _TEAM
    words = {w for w in counts if ":" not in w}
    cued = cue_counts([*title_stems, *title_stems, *text_stems, *task_stems])
    for kind, n in cued.items():
        counts[f"measure:{kind}"] += _MEASURE * n
    return _Document(planned, counts, words, set(title_stems), labels)


def _idf(documents: Sequence[Mapping[str, float]]) -> dict[str, float]:
    frequency = Counter(feature for counts in documents for feature in counts)
    total = len(documents)
    return {feature: math.log((total + 1) / (df + 1)) for feature, df in frequency.items()}


def _vector(counts: Mapping[str, float], idf: Mapping[str, float], linking: set[str]) -> dict[str, float]:
    vector = {
        feature: (1.0 + math.log(n) if n >= 1 else n) * idf[feature]
        for feature, n in counts.items()
        if feature in linking and idf[feature] > 0
    }
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {feature: v / norm for feature, v in vector.items()} if norm else {}


# --- clustering ------------------------------------------------------------------------------------------


def similarities(vectors: Sequence[Mapping[str, float]]) -> list[dict[int, float]]:
    """Each vector's positive cosine similarity to every other (unit vectors), by index; pairs sharing
    no feature are left out, so a large portfolio of unrelated milestones costs little."""
    postings: defaultdict[str, list[tuple[int, float]]] = defaultdict(list)
    for index, vector in enumerate(vectors):
        for feature, weight in vector.items():
            postings[feature].append((index, weight))
    found: list[dict[int, float]] = [{} for _ in vectors]
    for index, vector in enumerate(vectors):
        row = found[index]
        for feature, weight in vector.items():
            for other, other_weight in postings[feature]:
                if other != index:
                    row[other] = row.get(other, 0.0) + weight * other_weight
    return found


def average_linkage(
    similarity: Sequence[Mapping[int, float]] | Sequence[Sequence[float]],
    threshold: float,
    tie: Callable[[int], float] = float,
) -> list[list[int]]:
    """Groups of item indexes: average-linkage agglomerative clustering, merging the most similar pair
    of groups first, until no two groups have a mean similarity of at least `threshold`.

    `similarity` gives each item's similarity to the others (a row of a matrix, or a mapping leaving
    out the zeros); `tie` orders pairs whose similarities are equal, so the result never depends on
    the order of the input."""
    sims = _sparse(similarity)
    sizes = dict.fromkeys(sims, 1)
    members: dict[int, list[int]] = {i: [i] for i in sims}
    order = {i: tie(i) for i in sims}
    best = {c: _nearest(c, sims, order) for c in sims}
    next_id = len(sims)
    while True:
        pairs = [(value, c, d) for c, (value, d) in best.items() if d is not None]
        if not pairs:
            break
        value, c, d = max(pairs, key=lambda p: (p[0], -min(order[p[1]], order[p[2]]), -p[1]))
        if value < threshold:
            break
        merged, next_id = next_id, next_id + 1
        size_c, size_d = sizes.pop(c), sizes.pop(d)
        row: dict[int, float] = {}
        for other in (set(sims[c]) | set(sims[d])) - {c, d}:
            mean = (size_c * sims[c].get(other, 0.0) + size_d * sims[d].get(other, 0.0)) / (size_c + size_d)
            if mean > 0:
                row[other] = mean
        for gone in (c, d):
            for other in sims.pop(gone):
                sims[other].pop(gone, None)
            best.pop(gone)
        sims[merged] = row
        for other, mean in row.items():
            sims[other][merged] = mean
        sizes[merged] = size_c + size_d
        order[merged] = min(order[c], order[d])
        members[merged] = members.pop(c) + members.pop(d)
        best[merged] = _nearest(merged, sims, order)
        for other, (value, partner) in list(best.items()):
            if partner in (c, d):
                best[other] = _nearest(other, sims, order)
            elif other in row and (partner is None or row[other] > value):
                best[other] = (row[other], merged)
    return sorted((sorted(group) for group in members.values()), key=lambda g: g[0])


def _sparse(
    similarity: Sequence[Mapping[int, float]] | Sequence[Sequence[float]],
) -> dict[int, dict[int, float]]:
    sims: dict[int, dict[int, float]] = {}
    for i, row in enumerate(similarity):
        items = row.items() if isinstance(row, Mapping) else enumerate(row)
        sims[i] = {j: v for j, v in items if j != i and v > 0}
    return sims


def _nearest(
    cluster: int, sims: Mapping[int, Mapping[int, float]], order: Mapping[int, float]
) -> tuple[float, int | None]:
    row = sims[cluster]
    if not row:
        return 0.0, None
    other = max(row, key=lambda o: (row[o], -order[o], -o))
    return row[other], other


# --- drafting --------------------------------------------------------------------------------------------


def draft_okrs(
    planned: Sequence[PlannedMilestone],
    *,
    now: datetime,
    seed: int = 0,
    corpus: Iterable[PlannedMilestone] = (),
    portfolio: Iterable[Milestone] = (),
    threshold: float = DEFAULT_THRESHOLD,
    min_members: int = 2,
) -> Drafts:
    """Draft key results from the groups of `planned` and objectives over them, highest value first.

    `corpus` (the portfolio's other milestones) sharpens which words are common; `portfolio` (every open
    milestone, `planned` ones included) gives the ranks and the total value shares are taken of. Groups
    under `min_members` milestones are returned as `ungrouped`."""
    now = require_utc(now, "now")
    vocabulary = Vocabulary()
    documents = [_document(p, vocabulary) for p in planned]
    asked = {p.ref for p in planned}
    others = [_document(p, vocabulary).counts for p in corpus if p.ref not in asked]
    idf = _idf([d.counts for d in documents] + others)
    in_planned = Counter(feature for d in documents for feature in d.counts)
    linking = {feature for feature, n in in_planned.items() if n >= 2}
    vectors = [_vector(d.counts, idf, linking) for d in documents]
    groups = average_linkage(
        similarities(vectors), threshold, tie=lambda i: _tie(seed, documents[i].planned.ref)
    )
    ranks, total = _portfolio(portfolio, planned)
    context = _Context(documents, vectors, idf, vocabulary, ranks, total)
    key_results = sorted(
        (_key_result(group, context) for group in groups if len(group) >= min_members),
        key=lambda kr: (-kr.value, -len(kr.members), kr.id),
    )
    ungrouped = [context.member(i) for group in groups if len(group) < min_members for i in group]
    objectives, key_results = _objectives(key_results, context)
    return Drafts(
        made_at=now,
        considered=len(planned),
        portfolio_value=total,
        key_results=tuple(key_results),
        objectives=tuple(objectives),
        ungrouped=tuple(sorted(ungrouped, key=_member_order)),
    )


def _tie(seed: int, ref: Ref) -> float:
    digest = hashlib.sha256(f"{seed}:{ref}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _portfolio(
    portfolio: Iterable[Milestone], planned: Sequence[PlannedMilestone]
) -> tuple[dict[Ref, int], float]:
    """Each open milestone's rank by value (1 = most valuable; those without a value have none) and
    the total value of the open milestones."""
    found = {Ref(m.source, m.remote_id): m for m in portfolio if not m.deleted}
    for p in planned:
        found.setdefault(p.ref, p.milestone)
    open_ones = [(ref, m) for ref, m in found.items() if m.category is not StatusCategory.DONE]
    valued = sorted(
        ((ref, m) for ref, m in open_ones if m.value is not None),
        key=lambda item: (-(item[1].value or 0.0), item[1].key, str(item[0])),
    )
    ranks = {ref: position for position, (ref, _) in enumerate(valued, start=1)}
    return ranks, sum(m.value or 0.0 for _, m in open_ones)


def _member_order(member: DraftMember) -> tuple[float, str, str]:
    return (-(member.value or 0.0), member.key, str(member.milestone))


@dataclass(frozen=True, slots=True)
class _Context:
    documents: Sequence[_Document]
    vectors: Sequence[Mapping[str, float]]
    idf: Mapping[str, float]
    vocabulary: Vocabulary
    ranks: Mapping[Ref, int]
    total: float

    def member(self, index: int) -> DraftMember:
        milestone = self.documents[index].planned.milestone
        ref = Ref(milestone.source, milestone.remote_id)
        return DraftMember(
            ref, milestone.key, milestone.title, milestone.team, milestone.value, self.ranks.get(ref)
        )

    def share(self, value: float) -> float:
        return value / self.total if self.total > 0 else 0.0


def draft_id(prefix: str, members: Iterable[str]) -> str:
    """A short id that stays while the members do (in any order)."""
    digest = hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()
    return f"{prefix}-{digest[:8]}"


def _key_result(group: Sequence[int], context: _Context) -> DraftKeyResult:
    members = sorted((context.member(i) for i in group), key=_member_order)
    value = sum(m.value or 0.0 for m in members)
    documents = [context.documents[i] for i in group]
    terms = _shared_terms(documents, context)
    measure = _measure_of(documents)
    names = context.vocabulary.names(terms[:3] or _top_cues(documents, measure))
    topic = _join(names) if names else members[0].title
    template = BY_KIND[measure].title if measure else UNMEASURED_TITLE
    reasons = _reasons(documents, terms, measure, context)
    return DraftKeyResult(
        id=draft_id("KRD", (str(m.milestone) for m in members)),
        title=template.replace("{terms}", topic),
        measure=measure,
        unit=BY_KIND[measure].unit if measure else None,
        members=tuple(members),
        value=value,
        share=context.share(value),
        terms=tuple(context.vocabulary.names(terms)),
        reasons=tuple(reasons),
    )


def _shared_terms(documents: Sequence[_Document], context: _Context, limit: int = 6) -> list[str]:
    """The words most of the group uses and the portfolio does not: members using it times its IDF."""
    used = Counter(word for d in documents for word in d.words)
    least = 2 if len(documents) > 1 else 1
    scored = [
        (n * context.idf.get(word, 0.0), word)
        for word, n in used.items()
        if n >= least and context.idf.get(word, 0.0) > 0
    ]
    return [word for _, word in sorted(scored, key=lambda item: (-item[0], item[1]))[:limit]]


def _top_cues(documents: Sequence[_Document], measure: str | None, limit: int = 3) -> list[str]:
    """The words that named the group's measure, most used first (a group sharing no word still has
    those)."""
    if measure is None:
        return []
    cues = Counter(word for d in documents for word in cue_words(d.words, measure))
    return [word for word, _ in sorted(cues.items(), key=lambda i: (-i[1], i[0]))[:limit]]


def _measure_of(documents: Sequence[_Document]) -> str | None:
    """The measure kind most of the group's milestones cue (their titles counting double), if any
    milestone of the group cues one."""
    votes: Counter[str] = Counter()
    for document in documents:
        for kind in cue_counts(document.words):
            weight = 2 if cue_words(document.title_words, kind) else 1
            votes[kind] += weight
    if not votes:
        return None
    return min(votes.items(), key=lambda item: (-item[1], item[0]))[0]


def _reasons(
    documents: Sequence[_Document], terms: Sequence[str], measure: str | None, context: _Context
) -> list[str]:
    size = len(documents)
    reasons = []
    if terms:
        used = Counter(word for d in documents for word in d.words)
        shown = ", ".join(f"{context.vocabulary.name(t)} ({used[t]} of {size})" for t in terms)
        reasons.append(f"shared words: {shown}")
    labels = Counter(label for d in documents for label in d.labels)
    common = [(label, n) for label, n in sorted(labels.items(), key=lambda i: (-i[1], i[0])) if n >= 2]
    if common:
        reasons.append("shared labels: " + ", ".join(f"{label} ({n} of {size})" for label, n in common[:4]))
    teams = Counter(d.planned.milestone.team or "no team" for d in documents)
    reasons.append(
        "teams: "
        + ", ".join(f"{team} ({n})" for team, n in sorted(teams.items(), key=lambda i: (-i[1], i[0])))
    )
    if measure:
        named = ", ".join(context.vocabulary.names(_top_cues(documents, measure, limit=4)))
        reasons.append(f"measure {measure}: the milestones speak of {named}")
    return reasons


def _join(names: Sequence[str]) -> str:
    if not names:
        return "these milestones"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _objectives(
    key_results: Sequence[DraftKeyResult], context: _Context
) -> tuple[list[DraftObjective], list[DraftKeyResult]]:
    """Objectives over the drafted key results: those whose measures belong to one family (visitors,
    leads and conversion: market interest) share one; the others are grouped by what their milestones
    say, each group an objective."""
    families: defaultdict[str, list[int]] = defaultdict(list)
    unmeasured = []
    for index, kr in enumerate(key_results):
        if kr.measure:
            families[BY_KIND[kr.measure].family].append(index)
        else:
            unmeasured.append(index)
    built: list[tuple[list[int], str, str]] = []
    for family, indexes in families.items():
        kinds = list(dict.fromkeys(key_results[i].measure or "" for i in indexes))
        built.append((indexes, FAMILIES[family].objective, f"key results measuring {_join(kinds)}"))
    for indexes in _related(key_results, unmeasured, context):
        words = list(dict.fromkeys(t for i in indexes for t in key_results[i].terms[:2]))[:3]
        built.append((indexes, f"Deliver what {_join(words)} are for", "key results sharing their words"))
    objectives = []
    assigned: dict[int, str] = {}
    for indexes, title, reason in built:
        ids = [key_results[i].id for i in indexes]
        value = sum(key_results[i].value for i in indexes)
        objective_id = draft_id("OD", ids)
        assigned.update(dict.fromkeys(indexes, objective_id))
        objectives.append(
            DraftObjective(objective_id, title, tuple(ids), value, context.share(value), (reason,))
        )
    objectives.sort(key=lambda o: (-o.value, o.id))
    return objectives, [replace(kr, objective_id=assigned[i]) for i, kr in enumerate(key_results)]


def _related(
    key_results: Sequence[DraftKeyResult], indexes: Sequence[int], context: _Context
) -> list[list[int]]:
    """`indexes` of `key_results` grouped by the similarity of their milestones' centroids."""
    by_ref = {d.planned.ref: v for d, v in zip(context.documents, context.vectors, strict=True)}
    centroids = [_centroid([by_ref[m.milestone] for m in key_results[i].members]) for i in indexes]
    groups = average_linkage(similarities(centroids), OBJECTIVE_THRESHOLD)
    return [[indexes[i] for i in group] for group in groups]


def _centroid(vectors: Sequence[Mapping[str, float]]) -> dict[str, float]:
    summed: defaultdict[str, float] = defaultdict(float)
    for vector in vectors:
        for feature, weight in vector.items():
            summed[feature] += weight
    norm = math.sqrt(sum(v * v for v in summed.values()))
    return {feature: v / norm for feature, v in summed.items()} if norm else {}
