"""The `asana` v5 SDK's `ApiClient`, built so that only the bridge's own policy retries and times out.

Out of the box the SDK retries by itself: urllib3 `Retry(total=5, backoff_factor=2,
status_forcelist=[429, 500, 502, 503, 504])` on GET/PUT/DELETE, sleeping through `Retry-After`, and a
persistent 429 then surfaces as urllib3's `MaxRetryError` instead of an `ApiException`. With
`retry_strategy = False` every answer comes back at once: a 429 or 5xx raises `ApiException` with its
`status` and `headers` (`Retry-After` included), and a connection failure raises urllib3's own error.

The SDK also sends every request without a timeout unless each call passes `_request_timeout`;
`make_api_client` gives every request the timeout it is told.

Beware `EventsApi.get_events(...)` as an iterator: once it holds a sync token it never takes the newer one
an answer carries, so with more than 100 pending events (`has_more`) it repeats pages forever. Call it
with `full_payload=True` and carry `sync` from answer to answer instead.
"""

from __future__ import annotations

from typing import Any

import asana
from asana.rest import RESTClientObject

__all__ = ["make_api_client"]


class _TimedRESTClient(RESTClientObject):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's REST client with a default (connect, read) timeout for calls that set none."""

    def __init__(self, configuration: Any, timeout: float) -> None:
        super().__init__(configuration)
        self._timeout = (timeout, timeout)  # a tuple: the SDK ignores a float `_request_timeout`

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = self._timeout
        return super().request(method, url, *args, **kwargs)


def make_api_client(base_url: str, token: str, timeout: float, verify: bool | str = True) -> asana.ApiClient:
    """An `ApiClient` for the Asana API at `base_url` (e.g. https://app.asana.com) with retries off.

    `verify` is a CA bundle's path, True (the SDK's certifi roots) or False (no certificate check).
    """
    configuration = asana.Configuration()
    configuration.host = base_url.rstrip("/") + "/api/1.0"
    configuration.access_token = token
    configuration.retry_strategy = False  # urllib3: no retries, no redirects, errors raised as they are
    configuration.verify_ssl = verify is not False
    configuration.ssl_ca_cert = verify if isinstance(verify, str) else None
    client = asana.ApiClient(configuration)
    client.rest_client = _TimedRESTClient(configuration, timeout)
    return client
