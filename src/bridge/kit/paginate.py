"""Paginators: one object per way a tracker pages a listing, each with a loop check.

A listing is walked by `paginator.pages(fetch)`: `fetch(token)` asks the tracker for the page at `token`
(None for the first page), the paginator reads the next token from the answer, and stops when there is
none. A tracker that answers the same token twice would make a listing loop forever; the paginator raises
`PaginationLoop` instead (singer-sdk's `BaseAPIPaginator` does the same).

Three shapes cover the vendors:
- `TokenPaginator`: the answer names the next page (Jira Cloud `nextPageToken`, Asana `next_page.offset`);
- `OffsetPaginator`: the next page starts after the items seen so far (Jira Data Center `startAt`);
- `KeyPaginator`: a fresh query from the last key seen (Trello `before=<last id>`, a JQL query resumed
  from the last `updated` minute), until a page comes back short.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from bridge.errors import FatalAPIError

PageT = TypeVar("PageT")
TokenT = TypeVar("TokenT", bound=Hashable)


class PaginationLoop(FatalAPIError):
    """The tracker answered a page token it had already given: reading on would never end."""


class Paginator(ABC, Generic[TokenT, PageT]):
    """Walks one listing page by page; `token` is where the next request starts (None: the first page)."""

    def __init__(self, listing: str, start: TokenT | None = None, *, tracker: str | None = None) -> None:
        self.listing = listing
        """What is being listed, for the loop error (`acme: issues of project PAY`)."""
        self.tracker = tracker
        self.token: TokenT | None = start
        self.has_more = True
        self.pages_read = 0
        self._seen: set[TokenT] = set() if start is None else {start}

    @abstractmethod
    def next_token(self, page: PageT) -> TokenT | None:
        """The token of the page after `page`, or None when `page` was the last."""

    def advance(self, page: PageT) -> None:
        """Move past `page`; raise `PaginationLoop` when the next token was seen before."""
        self.pages_read += 1
        token = self.next_token(page)
        if token is None:
            self.has_more = False
            return
        if token in self._seen:
            raise PaginationLoop(
                f"{self.listing}: the tracker gave page token {token!r} again after {self.pages_read} "
                "pages; stopped instead of reading the same pages forever",
                tracker=self.tracker,
            )
        self._seen.add(token)
        self.token = token

    def pages(self, fetch: Callable[[TokenT | None], PageT]) -> Iterator[PageT]:
        """Each page of the listing, fetched when the one before has been consumed."""
        while self.has_more:
            page = fetch(self.token)
            yield page
            self.advance(page)


class TokenPaginator(Paginator[str, PageT]):
    """The answer names the next page: `next_of(page)` is its token, or None (or empty) on the last page."""

    def __init__(
        self,
        listing: str,
        next_of: Callable[[PageT], str | None],
        *,
        start: str | None = None,
        tracker: str | None = None,
    ) -> None:
        super().__init__(listing, start, tracker=tracker)
        self._next_of = next_of

    def next_token(self, page: PageT) -> str | None:
        return self._next_of(page) or None


class OffsetPaginator(Paginator[int, PageT]):
    """The next page starts after the items read so far.

    `count_of(page)` is how many items the page held; `last(page, end)` tells whether the listing ends at
    `end` (say, `end >= total`). An empty page always ends it, so a server that miscounts cannot loop.
    """

    def __init__(
        self,
        listing: str,
        count_of: Callable[[PageT], int],
        last: Callable[[PageT, int], bool],
        *,
        start: int = 0,
        tracker: str | None = None,
    ) -> None:
        super().__init__(listing, start, tracker=tracker)
        self._count_of = count_of
        self._last = last

    def next_token(self, page: PageT) -> int | None:
        count = self._count_of(page)
        end = (self.token or 0) + count
        if count == 0 or self._last(page, end):
            return None
        return end


class KeyPaginator(Paginator[TokenT, PageT]):
    """A fresh query from the last key seen: `key_of(page)` is where the next query starts, or None when
    `page` ended the listing (a short page, say). A key that does not move is a loop."""

    def __init__(
        self,
        listing: str,
        key_of: Callable[[PageT], TokenT | None],
        *,
        start: TokenT | None = None,
        tracker: str | None = None,
    ) -> None:
        super().__init__(listing, start, tracker=tracker)
        self._key_of = key_of

    def next_token(self, page: PageT) -> TokenT | None:
        return self._key_of(page)
