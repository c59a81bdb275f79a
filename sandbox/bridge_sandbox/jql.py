"""The subset of JQL the Jira emulator understands, parsed into a predicate and an ordering.

Supported: clauses joined by AND / OR (AND binds tighter) and parentheses; fields `project`, `key`
(`issuekey`, `id`), `issuetype` (`type`), `status`, `labels`, `parent`, `updated`, `created`; operators
`=`, `!=`, `in`, `not in`, `>`, `>=`, `<`, `<=`, `is empty`, `is not empty`; `ORDER BY` any of those
fields or `rank`, ASC or DESC. Dates are `"yyyy/MM/dd HH:mm"`, `"yyyy-MM-dd HH:mm"` or a bare day, read
in the API user's time zone with minute precision, as real Jira reads them. Anything else is a 400
with Jira's error shape, so a client relying on more JQL fails loudly here rather than in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|=|>|<|~|\(|\)|,)
      | (?P<word>[A-Za-z0-9_.\-\[\]/:]+)
    )""",
    re.VERBOSE,
)
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
FIELD_ALIASES = {
    "project": "project",
    "key": "key",
    "issuekey": "key",
    "id": "id",
    "issuetype": "issuetype",
    "type": "issuetype",
    "status": "status",
    "labels": "labels",
    "parent": "parent",
    "updated": "updated",
    "updateddate": "updated",
    "created": "created",
    "createddate": "created",
    "rank": "rank",
}
DATE_FIELDS = {"updated", "created"}


class JQLError(ValueError):
    """A query outside the supported subset, or malformed; becomes a 400."""


class Searchable(Protocol):
    """What a predicate asks of an issue."""

    def jql_value(self, field: str) -> Any: ...


Predicate = Callable[[Searchable], bool]


@dataclass(frozen=True)
class Query:
    predicate: Predicate
    order: Sequence[tuple[str, bool]]
    """(field, descending) pairs."""
    references: Sequence[tuple[str, str]] = ()
    """(field, value) of every issue named by key or id, which Jira checks exist before it searches."""


def parse(jql: str, zone: ZoneInfo) -> Query:
    tokens = _tokenise(jql)
    parser = _Parser(tokens, zone)
    predicate = parser.expression() if parser.peek() not in (None, "order") else (lambda issue: True)
    order = parser.order_by()
    if parser.peek() is not None:
        raise JQLError(f"Error in the JQL Query: Expecting end of query but got '{parser.peek_raw()}'.")
    return Query(predicate, order, tuple(parser.references))


def _tokenise(jql: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = jql.strip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise JQLError(
                f"Error in the JQL Query: The character '{text[position]}' is a reserved JQL character."
            )
        position = found.end()
        if found.group("string") is not None:
            raw = found.group("string")[1:-1]
            tokens.append(("string", re.sub(r"\\(.)", r"\1", raw)))
        elif found.group("op") is not None:
            tokens.append(("op", found.group("op")))
        else:
            tokens.append(("word", found.group("word")))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], zone: ZoneInfo) -> None:
        self.tokens = tokens
        self.index = 0
        self.zone = zone
        self.references: list[tuple[str, str]] = []

    def peek(self) -> str | None:
        if self.index >= len(self.tokens):
            return None
        kind, value = self.tokens[self.index]
        return value.lower() if kind == "word" else value

    def peek_raw(self) -> str:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else ""

    def take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise JQLError("Error in the JQL Query: The query ended unexpectedly.")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, word: str) -> None:
        _kind, value = self.take()
        if value.lower() != word:
            raise JQLError(f"Error in the JQL Query: Expecting '{word}' but got '{value}'.")

    def expression(self) -> Predicate:
        terms = [self.conjunction()]
        while self.peek() == "or":
            self.take()
            terms.append(self.conjunction())
        if len(terms) == 1:
            return terms[0]
        return lambda issue: any(term(issue) for term in terms)

    def conjunction(self) -> Predicate:
        factors = [self.factor()]
        while self.peek() == "and":
            self.take()
            factors.append(self.factor())
        if len(factors) == 1:
            return factors[0]
        return lambda issue: all(factor(issue) for factor in factors)

    def factor(self) -> Predicate:
        if self.peek() == "(":
            self.take()
            inner = self.expression()
            self.expect(")")
            return inner
        if self.peek() == "not":
            self.take()
            inner = self.factor()
            return lambda issue: not inner(issue)
        return self.clause()

    def clause(self) -> Predicate:
        kind, raw_field = self.take()
        field = FIELD_ALIASES.get(raw_field.lower())
        if kind != "word" or field is None or field == "rank":
            supported = ", ".join(sorted(set(FIELD_ALIASES.values()) - {"rank"}))
            raise JQLError(
                f"Field '{raw_field}' is not supported by this Jira sandbox's JQL (supported: {supported})."
            )
        operator = self.operator()
        if operator in ("is", "is not"):
            self.expect("empty") if self.peek() == "empty" else self.expect("null")
            empty = operator == "is"
            return lambda issue: _is_empty(issue.jql_value(field)) == empty
        if operator in ("in", "not in"):
            values = self.value_list()
            wanted = {self.normalise(field, v) for v in values}
            if field in ("key", "id"):
                self.references.extend((field, str(v)) for v in wanted)
            negate = operator == "not in"
            return lambda issue: _contains(issue.jql_value(field), wanted) != negate
        value = self.normalise(field, self.value())
        if field in ("key", "id"):
            self.references.append((field, str(value)))
        return self.compare(field, operator, value)

    def operator(self) -> str:
        kind, value = self.take()
        lowered = value.lower()
        if lowered == "not":
            self.expect("in")
            return "not in"
        if lowered == "is":
            if self.peek() == "not":
                self.take()
                return "is not"
            return "is"
        if lowered == "in" or (kind == "op" and value in ("=", "!=", ">", ">=", "<", "<=")):
            return lowered
        raise JQLError(f"Error in the JQL Query: The operator '{value}' is not supported by this sandbox.")

    def value(self) -> str:
        kind, value = self.take()
        if kind == "op":
            raise JQLError(f"Error in the JQL Query: Expecting a value but got '{value}'.")
        return value

    def value_list(self) -> list[str]:
        self.expect("(")
        values = [self.value()]
        while self.peek() == ",":
            self.take()
            values.append(self.value())
        self.expect(")")
        return values

    def normalise(self, field: str, value: str) -> Any:
        if field in DATE_FIELDS:
            return self.date(value)
        if field in ("key", "project", "parent"):
            return value.upper()
        return value.casefold()

    def date(self, value: str) -> datetime:
        return parse_date(value, self.zone)

    def compare(self, field: str, operator: str, value: Any) -> Predicate:
        if field in DATE_FIELDS:
            return _date_predicate(field, operator, value)
        if operator == "=":
            return lambda issue: _contains(issue.jql_value(field), {value})
        if operator == "!=":
            return lambda issue: not _contains(issue.jql_value(field), {value})
        raise JQLError(f"The operator '{operator}' is not supported by the '{field}' field.")

    def order_by(self) -> list[tuple[str, bool]]:
        if self.peek() != "order":
            return []
        self.take()
        self.expect("by")
        order = [self.order_item()]
        while self.peek() == ",":
            self.take()
            order.append(self.order_item())
        return order

    def order_item(self) -> tuple[str, bool]:
        _, raw = self.take()
        field = FIELD_ALIASES.get(raw.lower())
        if field is None:
            raise JQLError(f"Not able to sort using field '{raw}'.")
        descending = False
        if self.peek() in ("asc", "desc"):
            descending = self.take()[1].lower() == "desc"
        return field, descending


def parse_date(value: str, zone: ZoneInfo) -> datetime:
    """A JQL date literal, read in `zone` (the API user's) as real Jira reads it."""
    for pattern in _DATE_FORMATS:
        try:
            local = datetime.strptime(value, pattern)  # noqa: DTZ007 - zone attached below
        except ValueError:
            continue
        return local.replace(tzinfo=zone)
    raise JQLError(
        f"Date value '{value}' for field is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    )


def _date_predicate(field: str, operator: str, value: datetime) -> Predicate:
    # JQL compares at minute precision: `updated >= "10:05"` includes 10:05:59.
    def minute(issue: Searchable) -> datetime:
        stamp: datetime = issue.jql_value(field)
        return stamp.replace(second=0, microsecond=0)

    comparisons: dict[str, Callable[[datetime, datetime], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }
    compare = comparisons[operator]
    return lambda issue: compare(minute(issue), value)


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or value == ""


def _contains(value: Any, wanted: set[Any]) -> bool:
    if isinstance(value, list | tuple | set | frozenset):
        return any(item in wanted for item in value)
    return value in wanted
