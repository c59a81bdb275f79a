"""The retry policy, rate limiter, status mapping and redaction every connector shares."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from bridge.errors import AuthError, FatalAPIError, RetriableAPIError
from bridge.http import (
    SECRETS,
    RateLimiter,
    RedactingFilter,
    RetryPolicy,
    ShutdownRequested,
    error_for_status,
    parse_retry_after,
    prefetched,
    redact,
    response_json,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=30), usegmt=True), now=NOW) == 30.0
    assert parse_retry_after(format_datetime(NOW - timedelta(seconds=30), usegmt=True), now=NOW) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_status_mapping() -> None:
    limited = error_for_status(429, "slow down", tracker="acme", headers={"Retry-After": "4"})
    assert isinstance(limited, RetriableAPIError) and limited.retry_after == 4.0
    assert "acme" in str(limited)
    assert isinstance(error_for_status(503, "down"), RetriableAPIError)
    refused = error_for_status(401, "no", tracker="acme")
    assert isinstance(refused, AuthError) and "acme: the credentials were refused" in str(refused)
    assert isinstance(error_for_status(404, "gone"), FatalAPIError)
    assert not isinstance(error_for_status(400, "bad"), RetriableAPIError)


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_policy_honours_retry_after_then_succeeds() -> None:
    waits: list[float] = []
    policy = RetryPolicy(sleep=waits.append)
    limited = RetriableAPIError("429", status=429, retry_after=3.0)
    flaky = Flaky([limited, RetriableAPIError("503", status=503)])
    assert policy.call(flaky) == "ok"
    assert flaky.calls == 3
    assert waits[0] == 3.0
    assert 1.0 <= waits[1] <= 2.0, "second attempt backs off 2s with equal jitter: between 1 and 2"


def test_policy_gives_up_with_the_last_error() -> None:
    policy = RetryPolicy(attempts=3, sleep=lambda _: None)
    flaky = Flaky([RetriableAPIError(f"503 #{n}", status=503) for n in range(5)])
    with pytest.raises(RetriableAPIError, match="503 #2"):
        policy.call(flaky)
    assert flaky.calls == 3


def test_fatal_errors_are_not_retried() -> None:
    flaky = Flaky([FatalAPIError("400 bad request", status=400)])
    with pytest.raises(FatalAPIError):
        RetryPolicy(sleep=lambda _: None).call(flaky)
    assert flaky.calls == 1


def test_a_long_wait_is_cut_short_by_shutdown() -> None:
    policy = RetryPolicy()
    threading.Timer(0.2, policy.stop_event.set).start()
    started = time.monotonic()
    with pytest.raises(ShutdownRequested):
        policy.call(Flaky([RetriableAPIError("429", status=429, retry_after=60.0)] * 2))
    assert time.monotonic() - started < 2


def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(rate=20, burst=1)
    started = time.monotonic()
    for _ in range(6):
        limiter.acquire()
    assert time.monotonic() - started >= 0.2


def test_redaction_of_tokens_in_urls_headers_and_known_secrets() -> None:
    SECRETS.add("s3cr3t-token-value")
    text = (
        "GET https://api.trello.com/1/boards/x?key=abc123&token=def456 failed; "
        "headers {'Authorization': 'Bearer eyJhbGciOi'} body mentions s3cr3t-token-value"
    )
    cleaned = redact(text)
    for secret in ("abc123", "def456", "eyJhbGciOi", "s3cr3t-token-value"):
        assert secret not in cleaned
    assert "key=***" in cleaned and "token=***" in cleaned


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    SECRETS.add("another-secret-1234")
    logger = logging.getLogger("bridge.test.redaction")
    handler_filter = RedactingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="bridge.test.redaction"):
            logger.info("calling %s", "https://x/1?token=another-secret-1234")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert "another-secret-1234" not in caplog.text


def _response(body: bytes, content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.headers["Content-Type"] = content_type
    return response


def test_response_json_reads_the_bytes_and_falls_back_for_other_encodings() -> None:
    body = '{"issues": [{"key": "PAY-1", "summary": "Caf\u00e9 \u2014 ok"}], "isLast": true}'
    assert response_json(_response(body.encode("utf-8"))) == {
        "issues": [{"key": "PAY-1", "summary": "Café — ok"}],
        "isLast": True,
    }
    # UTF-16 is valid JSON that orjson refuses: requests detects the encoding instead
    assert response_json(_response('{"a": [1, 2]}'.encode("utf-16"))) == {"a": [1, 2]}
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response_json(_response(b"<html>gateway error</html>", "text/html"))


def test_prefetching_stages_keep_order_and_surface_errors_in_place() -> None:
    def pages() -> Iterator[int]:
        yield from range(5)
        raise RuntimeError("page 5 failed")

    mapped = prefetched(n * 10 for n in prefetched(pages()))
    seen = []
    with pytest.raises(RuntimeError, match="page 5 failed"):
        for value in mapped:
            seen.append(value)
    assert seen == [0, 10, 20, 30, 40]


def test_closing_the_last_stage_stops_every_stage_thread() -> None:
    before = {t for t in threading.enumerate() if t.name == "prefetch"}
    stages = prefetched(n for n in prefetched(iter(range(1_000_000))))
    assert next(stages) == 0
    stages.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not {t for t in threading.enumerate() if t.name == "prefetch"} - before:
            break
        time.sleep(0.05)
    assert not {t for t in threading.enumerate() if t.name == "prefetch"} - before
