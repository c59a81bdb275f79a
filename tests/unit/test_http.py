"""The retry policy, rate limiter, status mapping and redaction every connector shares."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bridge.errors import AuthError, FatalAPIError, RetriableAPIError
from bridge.http import (
    SECRETS,
    RateLimiter,
    RedactingFilter,
    RetryPolicy,
    ShutdownRequested,
    error_for_status,
    parse_retry_after,
    redact,
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
