"""The status server's `/report.html`: the HTML report with charts, rendered from the store on request,
kept until the `run` table changes, and linked from `/`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry
from sqlalchemy import insert

from bridge.config import BridgeConfig, DaemonConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.daemon.http import REPORT_PAGE, StatusServer
from bridge.report.html import CHART_IDS
from bridge.report.status_page import LiveStatus
from bridge.store import Store
from bridge.store.models import RunRow
from tests.cli.test_report_html import Org, make_org

RUN = RunRow.__table__  # type: ignore[attr-defined]


class Clock:
    """A clock a test moves on, one minute per reading, so each rendering has its own time."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def _config(org: Org) -> BridgeConfig:
    config = load_config(org.config, ConnectorRegistry.default())
    return config.model_copy(update={"daemon": DaemonConfig(http_host="127.0.0.1", http_port=0)})


def _live() -> LiveStatus:
    return LiveStatus(scheduler_running=True, replica="r1")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[StatusServer, Store]]:
    org = make_org(tmp_path)
    store = Store(org.store_url)
    server = StatusServer(_config(org), store, CollectorRegistry(), _live, clock=Clock())
    server.start()
    yield server, store
    server.stop()
    store.close()


def test_the_status_page_links_to_the_report_page(served: tuple[StatusServer, Store]) -> None:
    server, _ = served
    page = requests.get(f"{server.url}/", timeout=5)
    assert page.status_code == 200
    assert f'<a class="report" href="{REPORT_PAGE}">report with charts</a>' in page.text
    assert requests.get(f"{server.url}/status.json", timeout=5).json()["report_html"] == REPORT_PAGE


def test_the_report_page_draws_every_chart_from_the_store(served: tuple[StatusServer, Store]) -> None:
    server, _ = served
    response = requests.get(f"{server.url}{REPORT_PAGE}", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    for chart in CHART_IDS:
        assert f'<svg class="chart" id="{chart}"' in response.text
    assert 'class="row bottleneck"' in response.text
    assert "<script>alert" not in response.text and "&lt;script&gt;alert" in response.text
    head = requests.head(f"{server.url}{REPORT_PAGE}", timeout=30)
    assert head.status_code == 200 and head.text == ""


def test_the_page_is_kept_until_the_next_cycle(served: tuple[StatusServer, Store]) -> None:
    server, store = served
    first = requests.get(f"{server.url}{REPORT_PAGE}", timeout=30).text
    again = requests.get(f"{server.url}{REPORT_PAGE}", timeout=30).text
    assert again == first, "the same page while no cycle ran"
    started = datetime.now(UTC)
    with store.write() as conn:
        conn.execute(
            insert(RUN).values(
                source="acme-jira", kind="pull", started_at=started, status="ok", items_pulled=1,
                finished_at=started + timedelta(seconds=1), requests=1,
            )
        )  # fmt: skip
    fresh = requests.get(f"{server.url}{REPORT_PAGE}", timeout=30).text
    assert fresh != first, "a new run renders the page again (its generation time moved on)"
    server.forget_report()
    assert requests.get(f"{server.url}{REPORT_PAGE}", timeout=30).text != fresh


def test_an_empty_store_gives_the_page_with_no_data_notes(tmp_path: Path) -> None:
    org = make_org(tmp_path, empty=True)
    store = Store(org.store_url)
    try:
        with StatusServer(_config(org), store, CollectorRegistry(), _live) as server:
            response = requests.get(f"{server.url}{REPORT_PAGE}", timeout=30)
    finally:
        store.close()
    assert response.status_code == 200
    assert '<p class="no-data" data-chart="chart-ranks">' in response.text
    assert "bridge pull" in response.text


def test_an_unreadable_store_is_a_503_with_the_reason(tmp_path: Path) -> None:
    org = make_org(tmp_path, empty=True)
    folder = tmp_path / "gone"
    store = Store(f"sqlite:///{folder / 'store.db'}")
    try:
        with StatusServer(_config(org), store, CollectorRegistry(), _live) as server:
            response = requests.get(f"{server.url}{REPORT_PAGE}", timeout=30)
    finally:
        store.close()
    assert response.status_code == 503
    assert "the report could not be made" in response.text and '<a href="/">status</a>' in response.text
