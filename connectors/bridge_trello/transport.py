"""A `requests` transport adapter that sends py-trello's calls to another base URL, with a timeout.

py-trello builds every URL as `https://api.trello.com/1/...` and offers no way to change the host, but it
takes a `requests.Session` (`http_service=`). Mounting `BaseURLAdapter` on `https://api.trello.com/`
redirects those calls (to the sandbox, or to a corporate gateway) at the transport level. An HTTP proxy
would not do: for an https URL the client opens a CONNECT tunnel and the proxy never sees the request.
py-trello also sets no request timeout, so the adapter supplies one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.utils import should_bypass_proxies

Timeout = float | tuple[float, float] | tuple[float, None]

TRELLO_API = "https://api.trello.com/"


class BaseURLAdapter(HTTPAdapter):
    """Rewrite the scheme, host and port of every request to `base_url`, and default its timeout.

    A path in `base_url` is put in front of the request's path (`http://gw/trello` turns
    `https://api.trello.com/1/boards/x` into `http://gw/trello/1/boards/x`); the query is kept.
    Mount it on the prefix the SDK uses: `session.mount(TRELLO_API, BaseURLAdapter(url))`.
    """

    def __init__(self, base_url: str, timeout: Timeout = 30.0, **pool: Any) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        super().__init__(**pool)
        self.base_url = base_url
        self.timeout = timeout
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")

    def rewrite(self, url: str) -> str:
        """The URL this adapter sends `url` to."""
        parts = urlsplit(url)
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Timeout | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        """Send `request` to the rewritten URL; `timeout=None` (py-trello's) means the default timeout."""
        if request.url:
            request.url = self.rewrite(request.url)
            # The session chose proxies for api.trello.com; the new host may be one that bypasses them.
            if proxies and should_bypass_proxies(request.url, no_proxy=None):
                proxies = {}
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )
