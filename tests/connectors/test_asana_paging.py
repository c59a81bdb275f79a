"""Asana listings page through the kit's `TokenPaginator`: an offset token that comes back for a later
page is a `PaginationLoop`, not a listing read again forever (or, as before, cut short in silence)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from bridge.kit import PaginationLoop
from bridge_asana import AsanaConnector
from bridge_asana.pull import project_stream
from bridge_asana.session import Action
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.messages import Request
from bridge_sandbox.server import SandboxServer
from tests.connectors.test_asana_push import ROADMAP, T0, TASKS, TOKEN, _config, _seed

PAGE = 10  # the 30 tasks of the roadmap: three pages


class StuckAsana(AsanaEmulator):
    """The Asana sandbox, except that a page asked for with an offset names that same offset as next."""

    def _next_page(self, request: Request, items: Sequence[Any], end: int) -> Any:
        following = super()._next_page(request, items, end)
        asked = request.arg("offset")
        return {**following, "offset": asked} if asked else following


def _server(emulator: AsanaEmulator) -> Iterator[SandboxServer]:
    emulator.clock.set(T0 + timedelta(days=1))
    with SandboxServer(emulator) as running:
        yield running


@pytest.fixture
def stuck() -> Iterator[SandboxServer]:
    yield from _server(StuckAsana.from_seed(_seed()))


@pytest.fixture
def sound() -> Iterator[SandboxServer]:
    yield from _server(AsanaEmulator.from_seed(_seed()))


def _open(server: SandboxServer) -> AsanaConnector:
    config = _config(server.base_url).model_copy(update={"page_size": PAGE})
    return AsanaConnector.open("t", config, {"token_env": TOKEN})


def test_a_project_listing_whose_offset_repeats_raises_a_pagination_loop(stuck: SandboxServer) -> None:
    connector = _open(stuck)
    try:
        with pytest.raises(PaginationLoop, match=f"tasks of project {ROADMAP}") as raised:
            list(connector.pull(project_stream(ROADMAP), None, T0 + timedelta(days=1)))
        assert raised.value.tracker == "t"
    finally:
        connector.close()


def test_a_batched_listing_whose_offset_repeats_raises_a_pagination_loop(stuck: SandboxServer) -> None:
    connector = _open(stuck)
    try:
        with pytest.raises(PaginationLoop, match=f"GET /tasks\\?project={ROADMAP}"):
            connector.session.collect([Action("/tasks", {"project": ROADMAP}, ("name",), limit=PAGE)])
    finally:
        connector.close()


def test_listings_page_to_the_end(sound: SandboxServer) -> None:
    connector = _open(sound)
    try:
        (listed,) = connector.session.collect([Action("/tasks", {"project": ROADMAP}, ("name",), limit=PAGE)])
        assert listed is not None and len({task["gid"] for task in listed}) == TASKS
        pages = list(connector.pull(project_stream(ROADMAP), None, T0 + timedelta(days=1)))
        assert len(pages) == TASKS // PAGE
        assert sum(len(page.milestones) + len(page.tasks) for page in pages) == TASKS
    finally:
        connector.close()
