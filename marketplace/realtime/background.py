"""Publishing off the request path: committed batches wait in a bounded in-process
queue that one background task drains.

Why: a job posted to 1 000 members must not make the poster wait while the
messages go out (rendering per language, the Redis publish, the local fan-out
to the sockets this process holds).  The committing request only appends the
batch here and returns.

Why losing a batch here is acceptable: every notification is a stored row
before it is handed over, and a phone catches up on what it did not receive
live from those rows (realtime/handlers.py: the replay on every connect, and
the sync a page asks for after live messages).  So a full queue drops the batch
(logged), a failed send is logged and the next one goes on, and a task that
died (killed, or a BaseException) is started again by the next batch.  What is
lost is only the live moment, never a notification.

Cooperative under every async mode Flask-SocketIO runs in: the task, the wake-up
event and the sleeps come from the Socket.IO server's own async mode (a thread
and `threading.Event` with "threading", a greenlet and `gevent.event.Event`
with "gevent"), and nothing here blocks while holding the lock.  The task ends
itself after a while without work, so an app that is no longer used (tests make
many) leaves no thread behind; the next batch starts a new one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Batches waiting at most; beyond that the publisher is stuck (Redis hanging) and
#: queueing more would only grow memory: they are dropped and replayed later.
QUEUE_LIMIT = 10_000
#: Recipients waiting at most, over all queued batches: a batch holds one row per
#: recipient, so ten thousand posts to a big cluster would be millions of them.
RECIPIENT_LIMIT = 200_000
#: The task stops after this long without work; the next batch starts it again.
IDLE_SECONDS = 30.0


class BackgroundPublisher(Generic[T]):
    """`submit` from any request; `send` runs in one background task, in submit order.

    `start_task(fn)` starts `fn` in the background, `make_event()` makes an event and
    `sleep(seconds)` yields: all three from the Socket.IO server, so they suit its
    async mode.  `size(item)` is what an item weighs against `size_limit` (its
    recipients): the queue holds at most `limit` items and `size_limit` in all."""

    def __init__(self, send: Callable[[T], None], *, start_task: Callable[..., Any],
                 make_event: Callable[[], Any], sleep: Callable[[float], Any],
                 limit: int = QUEUE_LIMIT, idle_seconds: float = IDLE_SECONDS,
                 size: Callable[[T], int] = lambda _item: 1,
                 size_limit: int = RECIPIENT_LIMIT) -> None:
        self._send = send
        self._size = size
        self._size_limit = size_limit
        self._queued_size = 0  # the sizes of the items in the queue
        self._start_task = start_task
        self._sleep = sleep
        self._limit = limit
        self._idle = idle_seconds
        self._queue: deque[tuple[T, int]] = deque()
        self._wake = make_event()
        self._lock = threading.Lock()
        self._pending = 0  # submitted and not yet sent (or given up on)
        self._running = False
        self.dropped = 0  # batches refused because the queue was full
        self.failed = 0  # batches whose send raised
        self.starts = 0  # background tasks started so far

    def submit(self, item: T) -> bool:
        """Queue `item` for the background task; False if it was dropped (queue full:
        too many items, or too many recipients in them)."""
        size = self._size(item)
        with self._lock:
            # (one batch bigger than the whole bound still goes when nothing waits)
            if (self._pending >= self._limit
                    or (self._queued_size and self._queued_size + size > self._size_limit)):
                self.dropped += 1
                full = True
            else:
                full = False
                self._queue.append((item, size))
                self._queued_size += size
                self._pending += 1
                start = not self._running
                self._running = True
        if full:
            log.warning("live publishing queue full (%s batches, %s recipients waiting; "
                        "at most %s and %s): batch of %s dropped; phones get it by replay",
                        self._pending, self._queued_size, self._limit, self._size_limit,
                        size)
            return False
        self._wake.set()
        if start:
            self.starts += 1
            try:
                self._start_task(self._run)
            except Exception:
                with self._lock:
                    self._running = False
                log.exception("could not start the live publishing task")
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far has been sent; False on timeout.

        For tests that assert a live emit, and for a process about to exit."""
        deadline = time.monotonic() + timeout
        while self.pending:
            if time.monotonic() >= deadline:
                return False
            self._sleep(0.005)
        return True

    @property
    def running(self) -> bool:
        """Whether a background task is draining the queue (it ends itself when idle)."""
        with self._lock:
            return self._running

    @property
    def pending(self) -> int:
        """Batches submitted and not yet sent."""
        with self._lock:
            return self._pending

    def _next(self) -> tuple[bool, T | None]:
        """The next item, or (False, None) once idle long enough to stop."""
        while True:
            with self._lock:
                if self._queue:
                    item, size = self._queue.popleft()
                    self._queued_size -= size
                    return True, item
            self._wake.clear()
            if self._queue:  # appended between popleft and clear: its set() was cleared
                continue
            if not self._wake.wait(self._idle):
                with self._lock:
                    if not self._queue:
                        self._running = False
                        return False, None

    def _run(self) -> None:
        try:
            while True:
                found, item = self._next()
                if not found:
                    return
                try:
                    self._send(item)  # type: ignore[arg-type]  # found, so a T
                except Exception:  # the rows are stored: replay delivers them
                    self.failed += 1
                    log.exception("live publishing failed; phones get it by replay")
                finally:
                    with self._lock:
                        self._pending -= 1
        except BaseException:
            # Killed (GreenletExit, SystemExit...): the next submit starts a new task,
            # which sends what is still queued.
            with self._lock:
                self._running = False
            raise
