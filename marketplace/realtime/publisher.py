"""Turn stored notifications into Socket.IO messages, in the recipient's language.

The same wire shape (realtime/wire.py) serves the live emit after commit, the
replay on reconnect, the notification centre's JSON and Web Push, so a client
sees one shape whichever way a notification reaches it.

One message per language, not one per recipient: a committed batch (one event
for many people) is rendered once per language and emitted once per language to
the list of its recipients' rooms, which python-socketio sends as one message on
the Redis queue (PubSubManager.emit publishes the room list with the message;
every instance delivers it to the rooms it holds).  Such a shared message cannot
carry anyone's row id or sequence number, so it carries the event's `batch` key
instead and the page learns its own numbers by a sync (realtime/handlers.py).
Every live message has that shared form, also when a language has one reader:
a message whose form depended on how many others got it would tell a reader
that nobody else did (a numbered "job posted" = no other eligible partner; a
numbered "window closing" = every other eligible member already bid).

Off the request path: a request that commits hands its batches over when it
ends (teardown, after the response is built, also for Socket.IO events), and
only to a queue (realtime/background.py) that a background task drains,
rendering and emitting.  Why wait for the end of the request: the fan-out to a
thousand sockets is CPU work in the same process, and started at the commit it
competes with the rest of the poster's request; started at its end, the poster
gets the answer first and the phones their message no later.  Losing a live
message loses no notification: the rows are stored, and replay sends them.
"""

from __future__ import annotations

import atexit
import logging
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import Flask, has_request_context, request
from flask_babel import force_locale

from marketplace import events, fanout
from marketplace.db import session_scope
from marketplace.extensions import socketio_of
from marketplace.i18n import notification_text
from marketplace.realtime.background import BackgroundPublisher
from marketplace.realtime.models import Notification
from marketplace.realtime.rooms import user_room
from marketplace.realtime.wire import wire
from marketplace.scope import AppScope

log = logging.getLogger(__name__)

#: The app's background publisher, in app.extensions (tests and shutdown flush it).
EXTENSION = "realtime_publisher"
#: The app's background fan-out runner, in app.extensions.
FANOUT_EXTENSION = "fanout_runner"
T = TypeVar("T")


def render_notification(row: Notification) -> dict[str, Any]:
    """The wire shape of a notification, its text in the current locale (months by
    name, as the centre, Web Push and mail write them)."""
    return wire(row.id, row.seq, row.kind, notification_text(row.message, row.params),
                row.link, row.payload, row.created_at)


def live_messages(batch: events.Batch, default_locale: str
                  ) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """(message, rooms) per language of the batch's recipients; needs an app context.

    Always the shared form, without `id` and `seq` (the page's sync numbers it), even
    for a language with one reader: what a reader receives must not depend on who
    else received it.  `default_locale` serves only a recipient without a locale
    (events.notify already gives each one their cluster's)."""
    by_locale: dict[str, list[events.Recipient]] = {}
    for recipient in batch.recipients:
        by_locale.setdefault(recipient.locale or default_locale, []).append(recipient)
    for locale, readers in by_locale.items():
        with force_locale(locale):
            text = notification_text(batch.message, batch.params)
        yield (wire(None, None, batch.kind, text, batch.link, batch.payload,
                    batch.created_at),
               [user_room(r.user_id) for r in readers])


def install_publisher(app: Flask, scope: AppScope) -> BackgroundPublisher[events.Batch]:
    """Hand each committed batch of `app`'s sessions to a background task that emits it
    (via Redis if set): the publisher goes into the app's `scope`, not the process."""
    default_locale = app.config["BABEL_DEFAULT_LOCALE"]
    socketio = socketio_of(app)

    def publish(batch: events.Batch) -> None:
        with app.app_context():
            messages = list(live_messages(batch, default_locale))
        for message, rooms in messages:
            try:
                socketio.emit(batch.kind, message, to=rooms)  # type: ignore[arg-type]  # a list of rooms is one message (python-socketio takes it; the stub says str)
            except Exception:  # the rows are stored; replay delivers them later
                log.exception("could not deliver %s from notification_id=%s", batch.kind,
                              batch.recipients[0].notification_id)

    publisher, hand_off = in_background(app, EXTENSION, publish,
                                        size=lambda batch: len(batch.recipients))
    scope.provide(events.PUBLISHER, hand_off)
    return publisher


def in_background(app: Flask, name: str, send: Callable[[T], None],
                  size: Callable[[T], int] = lambda _item: 1
                  ) -> tuple[BackgroundPublisher[T], Callable[[T], None]]:
    """A background task of `app` that `send`s each item handed to it, and the function
    that hands items over: at the end of the request when called in one (after the
    response is built), at once otherwise (the scheduler, a command, a worker).  The
    task is kept in app.extensions[name]; a process about to exit flushes it."""
    socketio = socketio_of(app)
    server: Any = socketio.server  # type: ignore[attr-defined]  # init_app sets it; the stub lacks it
    assert server is not None, "in_background runs after socketio.init_app"
    task: BackgroundPublisher[T] = BackgroundPublisher(
        send, start_task=socketio.start_background_task,
        make_event=server.eio.create_event, sleep=server.sleep, size=size)
    app.extensions[name] = task
    deferred = f"marketplace.deferred.{name}"  # request.environ: handed over at its end

    def hand_off(item: T) -> None:
        if has_request_context():
            request.environ.setdefault(deferred, []).append(item)
        else:
            task.submit(item)

    @app.teardown_request
    def _submit_deferred(_error: BaseException | None) -> None:
        for item in request.environ.pop(deferred, []):
            task.submit(item)

    atexit.register(_flush_at_exit, weakref.ref(task))
    return task, hand_off


def install_fanout_runner(app: Flask, scope: AppScope) -> BackgroundPublisher[int]:
    """Do `app`'s fan-outs (marketplace/fanout.py) in a background task, each in its
    own session on the app's engine, so a posting request ends without waiting for
    the notifications of everyone the post reaches."""
    engine = app.extensions["engine"]

    def run(fanout_id: int) -> None:
        with app.app_context(), session_scope(engine) as session:
            fanout.run_pending(session, fanout_id)

    runner, hand_off = in_background(app, FANOUT_EXTENSION, run)
    scope.provide(fanout.RUNNER, hand_off)
    return runner


def flush(app: Flask, timeout: float = 5.0) -> bool:
    """Wait until `app`'s live messages committed so far are emitted; False on timeout."""
    publisher: BackgroundPublisher[events.Batch] | None = app.extensions.get(EXTENSION)
    return publisher.flush(timeout) if publisher is not None else True


def _flush_at_exit(publisher: weakref.ref[BackgroundPublisher[Any]]) -> None:
    """A command (`flask settle`, the scheduler) that commits and exits still sends
    what it queued, unless the queue is stuck.  Registered per app with a weak
    reference, so an app the process dropped (tests build many) is not kept alive."""
    alive = publisher()
    if alive is not None and alive.pending:
        alive.flush(5.0)
