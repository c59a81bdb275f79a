"""The kit's parts on their own: paginators stop and refuse loops, the write template refuses what the
config switches off and settles every write, the breaker gives up after three failures in a row."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config import TrackerConfig
from bridge.domain import FieldWrite, ItemState, LinkTarget, Ref, WriteKind
from bridge.errors import AuthError, OutcomeUnknown, RetriableAPIError, WriteRefused
from bridge.kit import (
    KeyPaginator,
    OffsetPaginator,
    Outcomes,
    PaginationLoop,
    RetryBreaker,
    TokenPaginator,
    Writer,
    config_refusal,
    holds,
)

# ---- paginators -----------------------------------------------------------------------------------------


def test_a_token_paginator_follows_tokens_to_the_last_page() -> None:
    answers = {None: {"items": [1, 2], "next": "b"}, "b": {"items": [3], "next": "c"}, "c": {"items": []}}
    asked: list[str | None] = []

    def fetch(token: str | None) -> dict[str, Any]:
        asked.append(token)
        return answers[token]

    pages = list(TokenPaginator[dict[str, Any]]("t: items", lambda p: p.get("next")).pages(fetch))
    assert [p["items"] for p in pages] == [[1, 2], [3], []]
    assert asked == [None, "b", "c"]


def test_a_token_given_twice_is_an_error_not_an_endless_listing() -> None:
    answers = {None: {"next": "b"}, "b": {"next": "c"}, "c": {"next": "b"}}
    paginator = TokenPaginator[dict[str, Any]]("acme: issues", lambda p: p.get("next"), tracker="acme")
    with pytest.raises(PaginationLoop, match=r"acme: issues: the tracker gave page token 'b' again after 3"):
        list(paginator.pages(lambda token: answers[token]))


def test_an_offset_paginator_stops_at_the_total_and_on_an_empty_page() -> None:
    total = 5

    def fetch(start: int | None) -> list[int]:
        return list(range(start or 0, min((start or 0) + 2, total)))

    by_total = OffsetPaginator[list[int]]("t", len, lambda page, end: end >= total)
    assert [p for page in by_total.pages(fetch) for p in page] == [0, 1, 2, 3, 4]
    never_last = OffsetPaginator[list[int]]("t", len, lambda page, end: False)
    assert sum(len(page) for page in never_last.pages(fetch)) == 5, "an empty page ends a miscounted listing"


def test_a_key_paginator_starts_each_query_from_the_last_key_and_refuses_a_key_that_does_not_move() -> None:
    ids = [f"id{n:02d}" for n in range(7)]

    def after(key: str | None) -> list[str]:
        return [i for i in ids if key is None or i > key][:3]

    listing = KeyPaginator[str, list[str]]("t", lambda page: page[-1] if len(page) == 3 else None)
    assert [i for page in listing.pages(after) for i in page] == ids
    stuck = KeyPaginator[str, list[str]]("t", lambda page: page[-1] if page else None)
    with pytest.raises(PaginationLoop):
        list(stuck.pages(lambda key: ids[:3]))


# ---- the write template --------------------------------------------------------------------------------


def _config(**write: Any) -> TrackerConfig:
    return TrackerConfig.model_validate(
        {"kind": "any", "url": "https://tracker.example", "status_map": {"Done": "done"}, "write": write}
    )


ITEM = Ref("acme", "1")
LINK = LinkTarget("milestone-bridge:kr:1", "https://okr.example/1", "Grow revenue")


@pytest.mark.parametrize(
    ("write", "settings", "reason"),
    [
        (FieldWrite(Ref("other", "1"), "rank", 1), {"rank_field": "Rank"}, "belongs to tracker 'other'"),
        (FieldWrite(ITEM, "mb-x", "red", kind=WriteKind.LABEL_ADD), {"labels": False}, "write.labels is off"),
        (
            FieldWrite(ITEM, LINK.global_id, LINK, kind=WriteKind.LINK),
            {"okr_links": False},
            "okr_links is off",
        ),
        (FieldWrite(ITEM, "backlog", (None, None), kind=WriteKind.ORDER), {}, "native_order is off"),
        (FieldWrite(ITEM, "rank", 1), {}, "write.rank_field is not set"),
        (FieldWrite(ITEM, "colour", 1), {"rank_field": "Rank"}, "not one the bridge writes"),
    ],
)
def test_the_config_refuses_what_it_does_not_manage(
    write: FieldWrite, settings: dict[str, Any], reason: str
) -> None:
    assert reason in str(config_refusal("acme", _config(**settings), write))


def test_taking_back_a_label_or_link_stays_allowed_after_it_was_switched_off() -> None:
    config = _config(labels=False, okr_links=False)
    assert config_refusal("acme", config, FieldWrite(ITEM, "mb-x", None, kind=WriteKind.LABEL_REMOVE)) is None
    assert config_refusal("acme", config, FieldWrite(ITEM, LINK.global_id, None, kind=WriteKind.LINK)) is None


class Recording(Writer[TrackerConfig]):
    """Sends nothing: records what reached `send` and fails what `failures` names."""

    def __init__(self, failures: dict[str, Exception] | None = None) -> None:
        super().__init__("acme", _config(rank_field="Rank"))
        self.failures = failures or {}
        self.sent: list[FieldWrite] = []

    def read_state(self, items: Any, *, links: Any = None) -> dict[Ref, ItemState]:
        return {}

    def refuse(self, write: FieldWrite) -> None:
        if write.kind is WriteKind.FIELD and not isinstance(write.value, int):
            raise WriteRefused(f"{write.value!r} is not a number")

    def send(self, writes: Any, outcomes: Outcomes) -> None:
        for index, write in writes:
            self.sent.append(write)
            failure = self.failures.get(write.item.remote_id)

            def request(failure: Exception | None = failure) -> None:
                if isinstance(failure, RetriableAPIError | AuthError):
                    raise failure

            try:
                self.breaker.call(request, "an edit")
            except WriteRefused as exc:
                failure = exc
            outcomes.settle(index, failure)


def test_the_template_refuses_checks_and_settles_every_write_in_order() -> None:
    writer = Recording({"3": WriteRefused("HTTP 400: rank is not on the edit screen")})
    writes = [
        FieldWrite(Ref("acme", "1"), "rank", 1),
        FieldWrite(Ref("acme", "2"), "rank", "one"),
        FieldWrite(Ref("acme", "3"), "rank", 3),
        FieldWrite(Ref("acme", "4"), "mb-x", "red", kind=WriteKind.LABEL_ADD),
    ]
    outcomes = writer.push(writes)
    assert [o.write for o in outcomes] == writes
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert outcomes[1].error == "acme: 'one' is not a number"
    assert outcomes[2].error == "acme: HTTP 400: rank is not on the edit screen"
    assert [w.item.remote_id for w in writer.sent] == ["1", "3", "4"], "a refused write is never sent"


def test_a_write_nothing_settled_fails_instead_of_vanishing() -> None:
    outcomes = Outcomes("acme", [FieldWrite(ITEM, "rank", 1)])
    (outcome,) = outcomes.result()
    assert not outcome.ok and outcome.error == "acme: the write was not sent"


def test_the_breaker_fails_writes_until_three_requests_in_a_row_failed_then_raises() -> None:
    down = RetriableAPIError("acme: HTTP 503: down", status=503)
    writer = Recording({"1": down, "2": down})
    outcomes = writer.push([FieldWrite(Ref("acme", n), "rank", 1) for n in ("1", "2", "5")])
    assert [o.ok for o in outcomes] == [False, False, True], "two in a row, then a success resets it"
    writer = Recording({n: down for n in ("1", "2", "3", "4")})
    with pytest.raises(RetriableAPIError):
        writer.push([FieldWrite(Ref("acme", n), "rank", 1) for n in ("1", "2", "3", "4")])
    assert len(writer.sent) == 3


def test_refused_credentials_stop_the_push_at_once() -> None:
    writer = Recording({"1": AuthError("acme: the credentials were refused (HTTP 401)", status=401)})
    with pytest.raises(AuthError):
        writer.push([FieldWrite(Ref("acme", "1"), "rank", 1), FieldWrite(Ref("acme", "2"), "rank", 1)])


def test_a_breaker_counts_only_failures_in_a_row() -> None:
    breaker = RetryBreaker("acme", limit=2)
    down = RetriableAPIError("HTTP 502", status=502)

    def fail() -> None:
        raise down

    with pytest.raises(WriteRefused):
        breaker.call(fail)
    assert breaker.call(lambda: "ok") == "ok" and breaker.in_a_row == 0
    with pytest.raises(WriteRefused):
        breaker.call(fail)
    with pytest.raises(RetriableAPIError):
        breaker.call(fail)


# ---- writes whose answer was lost -----------------------------------------------------------------------


class Lossy(Writer[TrackerConfig]):
    """A tracker losing the answers to the edits of `lost`; of those, the items in `applied` took theirs."""

    def __init__(self, lost: set[str], applied: set[str], *, readable: bool = True) -> None:
        super().__init__("acme", _config(rank_field="Rank"))
        self.lost, self.applied, self.readable = lost, applied, readable
        self.reads: list[list[str]] = []

    def read_state(self, items: Any, *, links: Any = None) -> dict[Ref, ItemState]:
        self.reads.append([ref.remote_id for ref in items])
        if not self.readable:
            raise RetriableAPIError("acme: HTTP 503: down", status=503)
        return {ref: ItemState(ref, ref.remote_id, {"rank": 7 if ref.remote_id in self.applied else None})
                for ref in items}  # fmt: skip

    def send(self, writes: Any, outcomes: Outcomes) -> None:
        for index, write in writes:

            def request(item: str = write.item.remote_id) -> None:
                if item in self.lost:
                    raise RetriableAPIError("acme: ReadTimeout")

            try:
                self.breaker.call(request, "an edit")
            except WriteRefused as exc:
                outcomes.fail(index, exc)
            else:
                outcomes.ok(index)


def test_writes_whose_answer_was_lost_are_read_back_in_one_read_and_settled_as_held() -> None:
    writer = Lossy(lost={"1", "2"}, applied={"1"})
    outcomes = writer.push([FieldWrite(Ref("acme", n), "rank", 7) for n in ("1", "2", "3")])
    assert [(o.ok, o.read_back) for o in outcomes] == [(True, True), (False, True), (True, False)]
    assert outcomes[0].error is None
    assert "no answer to an edit" in str(outcomes[1].error)
    assert "read back, the tracker does not hold it" in str(outcomes[1].error)
    assert writer.reads == [["1", "2"]], "one read for every write left unknown"


def test_writes_that_cannot_be_read_back_fail() -> None:
    writer = Lossy(lost={"1"}, applied={"1"}, readable=False)
    (outcome,) = writer.push([FieldWrite(Ref("acme", "1"), "rank", 7)])
    assert not outcome.ok and "could not be read back" in str(outcome.error)


def test_after_a_429_the_tracker_did_nothing_and_nothing_is_read_back() -> None:
    breaker = RetryBreaker("acme")

    def limited() -> None:
        raise RetriableAPIError("acme: HTTP 429", status=429)

    with pytest.raises(WriteRefused) as refused:
        breaker.call(limited)
    assert not isinstance(refused.value, OutcomeUnknown)


def test_holds_reads_each_kind_of_write_from_the_state() -> None:
    a, b = Ref("acme", "1"), Ref("acme", "2")
    states = {
        a: ItemState(
            a, "A-1", {"rank": 3.0}, frozenset({"mb-x"}), {LINK.global_id: LINK}, container="L", position=2
        ),
        b: ItemState(b, "A-2", container="L", position=1),
    }
    assert holds(FieldWrite(a, "rank", 3), states) and not holds(FieldWrite(a, "rank", 4), states)
    assert holds(FieldWrite(a, "mb-x", "red", kind=WriteKind.LABEL_ADD), states)
    assert holds(FieldWrite(b, "mb-x", None, kind=WriteKind.LABEL_REMOVE), states)
    assert holds(FieldWrite(a, LINK.global_id, LINK, kind=WriteKind.LINK), states)
    assert not holds(FieldWrite(a, LINK.global_id, None, kind=WriteKind.LINK), states)
    assert holds(FieldWrite(a, "L", (b, None), kind=WriteKind.ORDER), states)
    assert not holds(FieldWrite(a, "L", (None, b), kind=WriteKind.ORDER), states)
    assert not holds(FieldWrite(Ref("acme", "9"), "rank", 3), states), "a gone item holds nothing"
