"""Words of tracker text for grouping: tokenised, case-folded, stop words dropped and stemmed.

The stemmer is a small suffix stripper in the manner of Porter's: it folds the forms a planning text
uses for one idea ("visitors", "visitor"; "optimise", "optimizing", "optimization"; "caching",
"cached", "cache") onto one stem, and keeps stems of three letters or more. Nothing is downloaded.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

_APOSTROPHES = "'\u2019"
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?")

STOP_WORDS = frozenset(
    """
a about above across after again against all almost along also although always am among an and another
any anyone anything are around as at away back be because been before being below between both but by can
cannot could did do does doing done down during each either else enough etc even ever every few for from
further get gets getting give given go goes going got had has have having he her here hers him his how
however i if in into is it its itself just keep kept least less let like made make makes making many may
me might more most much must my near need needs neither never next no nor not now of off often on once one
only onto or other others otherwise our ours out over own per perhaps please put rather really same see
seen several shall she should since so some something still such than that the their theirs them then
there therefore these they thing things this those though through thus to together too toward towards
under until up upon us use used uses using very via was way ways we well were what when where whether
which while who whom whose why will with within without would yet you your yours
add adds added adding allow allows build builds building built create creates created creating deliver
delivers delivered enable enables enabled ensure improve improves improved improving implement implements
implemented implementing introduce introduces introduced introducing new better first second third phase
part parts step steps support supports supported ship ships shipped shipping work works worked team teams
rework set sets setup update updates updated updating v1 v2 v3 q1 q2 q3 q4 mvp milestone milestones
release releases released epic epics project projects initiative initiatives goal goals plan plans planned
bring brings send sends sent take takes taken start starts started day days week weeks month months
year years time times instead two three four five six seven eight nine ten
""".split()  # noqa: SIM905 - a word list reads better as text
)  # fmt: skip
"""English function words, and the verbs and nouns every plan uses for any outcome ("improve", "add",
"milestone", "phase"): they say how work is organised, not what it is for."""

_SUFFIXES = (
    ("izations", "ize"), ("isations", "ize"), ("ization", "ize"), ("isation", "ize"), ("ational", "ate"),
    ("fulness", "ful"), ("iveness", "ive"), ("ousness", "ous"), ("ements", ""), ("ement", ""),
    ("ments", ""), ("ment", ""), ("ations", "ate"), ("ation", "ate"), ("ising", "ize"), ("izing", "ize"),
    ("ised", "ize"), ("ized", "ize"), ("ises", "ize"), ("izes", "ize"), ("ise", "ize"), ("ities", "ity"),
    ("ies", "y"), ("ings", ""), ("ing", ""), ("edly", ""), ("ed", ""), ("ly", ""), ("sses", "ss"),
    ("es", "e"), ("s", ""),
)  # fmt: skip
_KEEP_S = ("ss", "us", "is", "ous")
_VOWELS = frozenset("aeiouy")


def stem(word: str) -> str:
    """The stem of one case-folded word (numbers and short words as they are)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement in _SUFFIXES:
        if not word.endswith(suffix):
            continue
        if suffix == "s" and word.endswith(_KEEP_S):
            return word
        base = word[: -len(suffix)] + replacement
        shortest = 4 if suffix in ("ed", "ing", "ings") else 3
        if len(base) < shortest or not _VOWELS & set(base):
            continue
        return _tidy(base, suffix)
    return _tidy(word, "")


def _tidy(base: str, suffix: str) -> str:
    """Undo the doubled consonant of "running", "planned"; drop a final silent e ("cache", "caching")."""
    if suffix in ("ing", "ed", "ings") and len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
        base = base[:-1]
    if len(base) > 4 and base.endswith("e") and not base.endswith(("ee", "ie")):
        base = base[:-1]
    return base


def words(text: str) -> list[str]:
    """The case-folded words of `text` that are not stop words (possessives trimmed), unstemmed."""
    found = []
    for raw in _WORD.findall(text.casefold()):
        word = re.split(f"[{_APOSTROPHES}]", raw)[0]
        if word in STOP_WORDS or len(word) < 2 or word.isdigit():
            continue
        found.append(word)
    return found


class Vocabulary:
    """Stems and the word each was most often written as, for naming a stem to a reader."""

    def __init__(self) -> None:
        self._forms: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def stems(self, text: str) -> list[str]:
        found = []
        for word in words(text):
            stemmed = stem(word)
            self._forms[stemmed][word] += 1
            found.append(stemmed)
        return found

    def name(self, stemmed: str) -> str:
        forms = self._forms.get(stemmed)
        if not forms:
            return stemmed
        return min(forms.items(), key=lambda item: (-item[1], len(item[0]), item[0]))[0]

    def names(self, stems: Iterable[str]) -> list[str]:
        return [self.name(s) for s in stems]
