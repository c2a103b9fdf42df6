"""`/healthz` for load balancers and operators: database, Redis, scheduler leader.

Answers 200 when every check passes and 503 otherwise, always with the
detail, so a probe and a person read the same thing.  It says nothing about
users or data and needs no login.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from marketplace.scheduling.leader import current_leader
from marketplace.web import db

bp = Blueprint("health", __name__)


def _database() -> dict[str, Any]:
    # The request's own session: a second connection could wait on the write lock
    # this request's session already holds on SQLite, and report a healthy database down.
    try:
        db().execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        db().rollback()
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True}


def _redis() -> dict[str, Any]:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return {"ok": True, "configured": False}
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        return {"ok": False, "configured": True, "error": type(error).__name__}
    return {"ok": True, "configured": True}


def _scheduler() -> dict[str, Any]:
    try:
        lease = current_leader(db())
    except SQLAlchemyError as error:
        return {"ok": False, "error": type(error).__name__}
    if lease is None:
        return {"ok": False, "leader": None}
    return {"ok": True, "leader": lease.holder, "renewed_at": lease.renewed_at.isoformat()}


@bp.route("/healthz")
def healthz() -> ResponseReturnValue:
    checks = {"database": _database(), "redis": _redis(), "scheduler": _scheduler()}
    healthy = all(check["ok"] for check in checks.values())
    return jsonify({"ok": healthy, **checks}), 200 if healthy else 503
