"""A process whose events other processes must hear refuses to start without a queue.

A separate `flask scheduler` without REDIS_URL used to close bid windows that
nobody connected heard about (0 of 9 phones told), with no warning anywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "x",
                   "REDIS_URL": "", "LOG_LEVEL": "WARNING", **env}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environment, text=True,
                          capture_output=True, timeout=60)


def test_a_scheduler_process_without_a_message_queue_refuses_to_start(database_url: str
                                                                       ) -> None:
    done = _run(["-m", "flask", "--app", "wsgi", "scheduler"], database_url,
                SCHEDULER_IN_PROCESS="true")
    assert done.returncode != 0
    assert "The scheduler process publishes live updates" in done.stderr
    assert "set REDIS_URL" in done.stderr


def test_a_web_instance_whose_scheduler_runs_elsewhere_needs_the_queue_too(
        database_url: str) -> None:
    done = _run(["-c", "import wsgi"], database_url, SCHEDULER_IN_PROCESS="false")
    assert done.returncode != 0 and "set REDIS_URL" in done.stderr
    embedded = _run(["-c", "import wsgi"], database_url, SCHEDULER_IN_PROCESS="true")
    assert embedded.returncode == 0, embedded.stderr  # one process: nothing to carry
    queued = _run(["-c", "import wsgi"], database_url, SCHEDULER_IN_PROCESS="false",
                  REDIS_URL="redis://127.0.0.1:1/0")
    assert queued.returncode == 0, queued.stderr
