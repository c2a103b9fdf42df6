"""Run the periodic tasks with APScheduler inside an app context.

Embedded default: one BackgroundScheduler in the app process.  At scale a
dedicated `flask scheduler` process runs the same tasks.  Every run opens its
own session and passes the current UTC time, exactly as a view would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from marketplace.db import session_scope, utcnow
from marketplace.scheduling.tasks import TASKS, PeriodicTask

log = logging.getLogger(__name__)


def run_task(app: Flask, task: PeriodicTask) -> None:
    """One run of one task, logged with what it did."""
    with app.app_context(), session_scope(app.extensions["engine"]) as session:
        result = task.run(session, utcnow())
    if result:
        log.info("task %s did %s", task.id, result)


def add_tasks(scheduler: BaseScheduler, app: Flask,
              tasks: Iterable[PeriodicTask] = TASKS) -> None:
    """Register the periodic tasks; a slow run is never overlapped by the next."""
    for task in tasks:
        scheduler.add_job(run_task, "interval", args=(app, task), id=task.id,
                          seconds=task.every_seconds, coalesce=True, max_instances=1,
                          replace_existing=True, next_run_time=utcnow())


def start_in_process(app: Flask) -> BackgroundScheduler:
    """The embedded default: a background scheduler thread in this process."""
    scheduler = BackgroundScheduler(timezone="UTC")
    add_tasks(scheduler, app)
    scheduler.start()
    log.info("in-process scheduler started with %d task(s)", len(TASKS))
    return scheduler
