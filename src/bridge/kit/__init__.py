"""The connector kit: what a tracker connector is built from, so a new tracker fills in vendor details only.

- `SessionConnector[ConfigT, SessionT, PullerT, WriterT]`: one typed lifecycle (open, pull, push, close);
- `TrackerSession`: a session's retry policy, rate limit, request counts, TLS setting and redacted
  credentials, set up from the tracker's config alike for every vendor;
- paginators (`TokenPaginator`, `OffsetPaginator`, `KeyPaginator`), each refusing a page token twice;
- `Writer`: the write template (validate against the config, group, send, one outcome per write), with
  `WriteRefused` as its one refusal and `RetryBreaker` as its one breaker; a request without an answer
  leaves its writes `OutcomeUnknown`, and the template reads them back (`Writer.read_back`, `holds`).

See the README's "Writing a connector" and `tests/kit/` for a whole connector built from these parts.
"""

from __future__ import annotations

from bridge.errors import OutcomeUnknown, WriteRefused
from bridge.kit.connector import Puller, Session, SessionConnector, WriteSide
from bridge.kit.paginate import KeyPaginator, OffsetPaginator, PaginationLoop, Paginator, TokenPaginator
from bridge.kit.session import TrackerSession
from bridge.kit.writer import EDIT_KINDS, Outcomes, RetryBreaker, Writer, config_refusal, holds

__all__ = [
    "EDIT_KINDS",
    "KeyPaginator",
    "OffsetPaginator",
    "OutcomeUnknown",
    "Outcomes",
    "PaginationLoop",
    "Paginator",
    "Puller",
    "RetryBreaker",
    "Session",
    "SessionConnector",
    "TokenPaginator",
    "TrackerSession",
    "WriteRefused",
    "WriteSide",
    "Writer",
    "config_refusal",
    "holds",
]
