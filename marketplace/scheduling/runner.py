"""Run the periodic tasks with APScheduler inside an app context.

Embedded default: one BackgroundScheduler in the app process.  At scale a
dedicated `flask scheduler` process runs the same tasks, and a second one can
stand by: only the elected leader (scheduling/leader.py) runs tasks.  Every
run opens its own session and passes the current UTC time, exactly as a view
would; the session is on the app's engine, so it acts with that app's
publisher and payment gateway (marketplace/scope.py), whichever app was built
last in the process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from marketplace.db import session_scope, utcnow
from marketplace.scheduling.leader import TICK_SECONDS, Leadership
from marketplace.scheduling.tasks import TASKS, PeriodicTask

log = logging.getLogger(__name__)


def run_task(app: Flask, task: PeriodicTask, leadership: Leadership) -> None:
    """One run of one task, logged with what it did; only the leader runs tasks."""
    if not leadership.is_leader:
        return
    with app.app_context(), session_scope(app.extensions["engine"]) as session:
        result = task.run(session, utcnow())
    if result:
        log.info("task %s did %s", task.id, result)


def add_tasks(scheduler: BaseScheduler, app: Flask, tasks: Iterable[PeriodicTask] = TASKS,
              leadership: Leadership | None = None) -> Leadership:
    """Register leader election and the periodic tasks; a slow run never overlaps the next.

    The first election happens right here, so the tasks' first runs already
    know whether this process leads.
    """
    leadership = leadership or Leadership(app.extensions["engine"])
    leadership.tick()
    log.info("scheduler %s is %s", leadership.holder,
             "the leader" if leadership.is_leader else "standing by")
    scheduler.add_job(leadership.tick, "interval", id="scheduler.leadership",
                      seconds=TICK_SECONDS, coalesce=True, max_instances=1,
                      replace_existing=True)
    for task in tasks:
        scheduler.add_job(run_task, "interval", args=(app, task, leadership), id=task.id,
                          seconds=task.every_seconds, coalesce=True, max_instances=1,
                          replace_existing=True, next_run_time=utcnow())
    return leadership


def start_in_process(app: Flask) -> BackgroundScheduler:
    """The embedded default: a background scheduler thread in this process."""
    scheduler = BackgroundScheduler(timezone="UTC")
    add_tasks(scheduler, app)
    scheduler.start()
    log.info("in-process scheduler started with %d task(s)", len(TASKS))
    return scheduler
