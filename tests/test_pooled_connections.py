"""Pooled PostgreSQL connections: checked when they may have died, not on every request.

A connection the server dropped (a restart overnight, a firewall's idle timeout)
must be replaced before a request uses it, or the first crew lead of the morning
gets an error page.  Pinging every connection on every checkout guaranteed that
at the price of one more round trip per request; a connection used a moment ago
is known to be alive.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from marketplace import db
from marketplace.db import make_engine


def _postgresql(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("pooled server connections: set TEST_DATABASE_URL (PostgreSQL)")


def _backend(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_the_server_dropped_is_replaced_before_it_is_used(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _postgresql(database_url)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every reuse counts as after idle
    engine = make_engine(database_url)
    killer = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        dropped = _backend(engine)
        with killer.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"),
                                {"pid": dropped}).scalar_one()
            deadline = time.monotonic() + 10
            while conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                               {"pid": dropped}).scalar_one() and time.monotonic() < deadline:
                time.sleep(0.05)
        assert _backend(engine) != dropped  # answered, on a fresh connection
    finally:
        engine.dispose()
        killer.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged_again(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _postgresql(database_url)
    engine = make_engine(database_url)
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted(connection: object) -> bool:
        pings.append(connection)
        return ping(connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    try:
        first = _backend(engine)
        for _ in range(20):  # a busy minute's requests, each checking a connection out
            assert _backend(engine) == first
        assert pings == []
    finally:
        engine.dispose()
