"""A stream read from its start in a worker process: the tracker's pages fetched, decoded and mapped on the
second core while this process stores them.

A first pull (or `--full`) reads every item a tracker has, and turning its JSON into rows is Python work
that threads cannot spread over cores: the interpreter runs one at a time. So when a stream starts with no
cursor, the pull forks: the child reads the stream through the connector it inherited (its own HTTP
connections; the parent's stay the parent's), packs each page (`bridge.store.packed`) and writes it to a
pipe; the parent unpacks and stores each page as it always does, in its own transaction with the cursor
that covers it. Nothing about what lands changes: the same pages, in the same order, with the same
cursors; a child that fails or dies ends the stream with an error after the pages it sent, which are
stored, as a failure of the in-process pull would.

The child tells the parent, on the same pipe, the requests it made (counted as the pull's), each retry
(`RETRY_EVENTS`) and each log record (handled by the parent's loggers, so a log line reads the same
whichever process made it). Incremental pulls (a few pages) stay in this process, as does every pull where
`fork` is not what the platform offers (only Linux uses it), and any when `BRIDGE_PULL_WORKER` is `off`.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import logging
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from bridge.connector import Connector
from bridge.domain import RemotePage
from bridge.errors import BridgeError, RetriableAPIError
from bridge.http import REQUEST_EVENTS, RETRY_EVENTS, SECRETS, Prefetched, ShutdownRequested, prefetched
from bridge.store.packed import pack_page, unpack_page

log = logging.getLogger(__name__)

WORKER_ENV = "BRIDGE_PULL_WORKER"
"""`off` (or `0`, `no`, `false`) keeps every pull in the process that stores it."""

RequestsHeard = Callable[[int, int], None]
"""Told of requests the worker made: (requests, setup requests) since it last told."""

_HEADER = 8
EXIT_GRACE_SECONDS = 5.0
"""How long a worker that ended its stream (or closed the pipe) is given to exit before it is killed."""
STOP_POLL_SECONDS = 0.05
"""How often a wait for the worker's next page looks at the stop event."""


def worker_wanted(connector: Connector, cursor: str | None) -> bool:
    """Whether a stream starting at `cursor` is read in a worker process: only from its start, only where
    Linux's `fork` is there, only through a connector that can let go of its inherited connections (its
    `forks` is true: `bridge.kit.SessionConnector` over a session with `forget_connections()`), and not
    when `BRIDGE_PULL_WORKER` is off."""
    if cursor is not None or sys.platform != "linux" or not hasattr(os, "fork"):
        return False
    if os.environ.get(WORKER_ENV, "").strip().lower() in ("0", "off", "no", "false"):
        return False
    return getattr(connector, "forks", False) is True


def worker_pages(
    connector: Connector,
    stream: str,
    cursor: str | None,
    signpost: datetime,
    *,
    dialect: str,
    tracker: str,
    heard: RequestsHeard,
    stop: threading.Event | None = None,
) -> WorkerPages:
    """The stream's pages as `connector.pull(stream, cursor, signpost)` gives them, read in a forked
    child; each page's history packed for a store of `dialect`. Close what this returns when it is not
    read to its end (the child is stopped). `stop` set while the next page is awaited stops the child and
    raises `ShutdownRequested`, as a retry's wait in this process would (the child does not see it)."""
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_end)
            die_with_parent(parent)
            code = _child(write_end, connector, stream, cursor, signpost, dialect)
        finally:
            os._exit(code)
    os.close(write_end)
    return WorkerPages(pid, read_end, tracker, heard, stop)


class WorkerPages(Iterator[RemotePage]):
    """The pages a worker process sends, unpacked on a thread of this process while the one before is
    stored (so `ready` tells, as `Prefetched` does, whether the next is already here)."""

    def __init__(
        self, pid: int, read_end: int, tracker: str, heard: RequestsHeard, stop: threading.Event | None
    ) -> None:
        self._pid: int | None = pid
        self._reaping = threading.Lock()
        """Held while the child is reaped: the reading thread and `close` may both end it."""
        self._stop = stop
        self._read_end = read_end
        self._tracker = tracker
        self._heard = heard
        self._counted = (0, 0)
        self._pages: Prefetched[RemotePage] = prefetched(self._receive())

    def __next__(self) -> RemotePage:
        if self._stop is not None:
            while not self._pages.ready():
                if self._stop.wait(STOP_POLL_SECONDS):
                    self.close()
                    raise ShutdownRequested()
        return next(self._pages)

    def ready(self) -> bool:
        return self._pages.ready()

    def close(self) -> None:
        """Stop the child (when it still runs) and the thread reading it."""
        self._stop_child()
        self._pages.close()

    def _receive(self) -> Iterator[RemotePage]:
        try:
            for kind, payload, counts in _frames(self._read_end):
                self._count(counts)
                if kind == "page":
                    yield unpack_page(payload)
                elif kind == "log":
                    _handle_record(payload)
                elif kind == "retry":
                    error = _rebuilt_error(payload)
                    if isinstance(error, RetriableAPIError):
                        RETRY_EVENTS.notify(error)
                elif kind == "error":
                    raise _rebuilt_error(payload)
                elif kind == "done":
                    self._stop_child(EXIT_GRACE_SECONDS)
                    return
            status = self._stop_child(EXIT_GRACE_SECONDS)
            raise BridgeError(
                f"{self._tracker}: the pull's worker process ended before its stream did ({status}); "
                "the pages it sent are stored, the next pull goes on from them"
            )
        finally:
            os.close(self._read_end)
            self._stop_child()

    def _count(self, counts: tuple[int, int] | None) -> None:
        if counts is None:
            return
        requests, setup = counts[0] - self._counted[0], counts[1] - self._counted[1]
        self._counted = counts
        if requests or setup:
            self._heard(requests, setup)
            for _ in range(requests + setup):
                REQUEST_EVENTS.notify(self._tracker)

    def _stop_child(self, grace: float = 0.0) -> str:
        """Reap the child, killing it first when it still runs after `grace` seconds (a child that sent
        its last message or closed the pipe is on its way out); how it ended."""
        with self._reaping:
            pid, self._pid = self._pid, None
            if pid is None:
                return "already reaped"
            try:
                deadline = time.monotonic() + grace
                done, status = os.waitpid(pid, os.WNOHANG)
                while done == 0 and time.monotonic() < deadline:
                    time.sleep(0.005)
                    done, status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    os.kill(pid, signal.SIGKILL)
                    _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                return "reaped elsewhere"
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.WEXITSTATUS(status)}"


def _frames(fd: int) -> Iterator[tuple[str, Any, tuple[int, int] | None]]:
    """The messages on the pipe, until it ends."""
    while True:
        header = _read_exactly(fd, _HEADER)
        if len(header) < _HEADER:
            return
        body = _read_exactly(fd, int.from_bytes(header, "big"))
        kind, payload, counts = pickle.loads(body)
        yield kind, payload, counts


def _read_exactly(fd: int, size: int) -> bytes:
    parts = []
    while size:
        part = os.read(fd, min(size, 1 << 20))
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


# ---- the child --------------------------------------------------------------------------------------


class _Channel:
    """The child's end of the pipe: one whole message at a time, whichever thread sends it."""

    def __init__(self, fd: int, counts: Callable[[], tuple[int, int]]) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self.counts = counts

    def send(self, kind: str, payload: Any) -> None:
        body = pickle.dumps((kind, payload, self.counts()), protocol=5)
        data = memoryview(len(body).to_bytes(_HEADER, "big") + body)
        with self._lock:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]


class _Forwarding(logging.Handler):
    """The child's one log handler: each record goes to the parent, which handles it as its own."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        # the parent gone or a record that cannot travel: there is nothing to tell it with
        with contextlib.suppress(Exception):
            self._channel.send("log", _portable_record(record))


def _child(
    fd: int, connector: Connector, stream: str, cursor: str | None, signpost: datetime, dialect: str
) -> int:
    """Read the stream and send its pages; the exit status."""
    stats = connector.stats()
    start = (int(stats.get("requests", 0)), int(stats.get("setup_requests", 0)))

    def counts() -> tuple[int, int]:
        now = connector.stats()
        return int(now.get("requests", 0)) - start[0], int(now.get("setup_requests", 0)) - start[1]

    channel = _Channel(fd, counts)
    try:
        _settle_after_fork(channel)
        forget = getattr(connector, "forget_connections")  # noqa: B009 - there, as `forks` said
        forget()
        for page in connector.pull(stream, cursor, signpost):
            channel.send("page", pack_page(page, dialect))
        channel.send("done", None)
        return 0
    except BrokenPipeError:
        return 1  # the parent stopped reading: it wants no more
    except BaseException as exc:
        with contextlib.suppress(OSError):
            channel.send("error", _portable_error(exc))
        return 1


def _settle_after_fork(channel: _Channel) -> None:
    """Make the forked child its own process: this thread is the only one left, so locks another thread
    held at the fork are made anew; log records and retries go to the parent; the listeners the parent
    registered (its metrics) are not called here; every object inherited is left out of collections
    (a collection would touch, and so copy, pages the parent still shares)."""
    gc.freeze()
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(number, signal.SIG_DFL)
    SECRETS.after_fork()
    REQUEST_EVENTS.after_fork()
    RETRY_EVENTS.after_fork()
    RETRY_EVENTS.add(lambda error: channel.send("retry", _portable_error(error)))
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            logger.handlers = []
    logging.getLogger().addHandler(_Forwarding(channel))


PR_SET_PDEATHSIG = 1
"""Linux's `prctl` option: the signal the calling process gets when the thread that forked it ends."""


def die_with_parent(parent: int) -> None:
    """In a forked child of `parent`: have the kernel kill this process when the parent's thread that
    forked it ends (the parent killed, say), so a worker asleep in a long retry does not outlive it,
    holding what it inherited (a daemon's listening port); and end at once when that already happened."""
    with contextlib.suppress(Exception):  # without it, the worker ends at its next write instead
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _portable_record(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of `record` that pickles: its message formatted, its traceback as text."""
    copy = logging.makeLogRecord(record.__dict__)
    copy.msg = record.getMessage()
    copy.args = None
    if record.exc_info:
        copy.exc_text = logging.Formatter().formatException(record.exc_info)
    copy.exc_info = None
    for name, value in list(vars(copy).items()):
        if not _picklable(value):
            setattr(copy, name, repr(value))
    return copy


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def _handle_record(record: logging.LogRecord) -> None:
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


def _portable_error(error: BaseException) -> bytes:
    """`error` as bytes `_rebuilt_error` makes it again from: pickled when it comes back whole, else its
    class, arguments and attributes (an error whose `__init__` takes other arguments than its `args`)."""
    try:
        data = pickle.dumps(error)
        pickle.loads(data)
        return data
    except Exception:
        pass
    state = {name: value for name, value in vars(error).items() if _picklable(value)}
    kind = type(error)
    return pickle.dumps(("rebuild", kind.__module__, kind.__qualname__, [str(a) for a in error.args], state))


def _rebuilt_error(data: bytes) -> BaseException:
    found = pickle.loads(data)
    if isinstance(found, BaseException):
        return found
    _, module, name, args, state = found
    try:
        kind: Any = importlib.import_module(module)
        for part in name.split("."):
            kind = getattr(kind, part)
        error: BaseException = kind.__new__(kind)
        error.args = tuple(args)
        vars(error).update(state)
        return error
    except Exception:
        return BridgeError("; ".join(args) or name)
