"""What every tracker session starts with, whatever SDK it wraps.

A session is the one door to a tracker's API: every request goes through its retry policy and its
client-side rate limit and is counted (setup reads apart). `TrackerSession` sets those up from the
tracker's config the same way for every vendor; a vendor's session adds its SDK client and its calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Generic, TypeVar

from bridge.config import TrackerConfig
from bridge.http import SECRETS, RequestCounter, RetryPolicy, tls_verify, tracker_limiter

ConfigT = TypeVar("ConfigT", bound=TrackerConfig)


class TrackerSession(RequestCounter, Generic[ConfigT]):
    """A tracker's name and config, its retry policy, its rate limit, its counts and its TLS setting.

    `vendor_rate` (requests a second) and `vendor_burst` are the vendor's published limits, used unless
    the config sets `max_requests_per_second`. The credentials given are registered for redaction, so
    they never reach a log or an error message, whatever the SDK puts there.
    """

    vendor_rate: ClassVar[float]
    vendor_burst: ClassVar[int] = 1

    def __init__(
        self,
        name: str,
        config: ConfigT,
        credentials: Iterable[str],
        *,
        policy: RetryPolicy | None = None,
        in_setup: bool = False,
    ) -> None:
        super().__init__(in_setup=in_setup)
        self.name = name
        self.config = config
        self.policy = policy or RetryPolicy()
        self.limiter = tracker_limiter(
            config.max_requests_per_second,
            self.vendor_rate,
            vendor_burst=self.vendor_burst,
            stop_event=self.policy.stop_event,
        )
        SECRETS.add(*credentials)
        self.verify: bool | str = tls_verify(name, config.verify_tls, config.ca_bundle)
        """`verify` for the HTTP client: a CA bundle's path, True, or False (warned about)."""

    def close(self) -> None:
        """Release the SDK's connections (nothing to do by default)."""
