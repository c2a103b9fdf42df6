"""A delivery worker in a process of its own, for the crash tests.

    python tests/worker_process.py push|mail      (settings from the environment)

Builds the app from the environment, as a deployed scheduler process does, and
runs one scheduled delivery task (`send_due_pushes` or `send_due_mails`, real
clock) every 0.2 s until it is killed -- or, so that a forgotten one never
lingers, WORKER_SECONDS (default 60) have passed.  `worker_process` starts one
from a test and kills it on the way out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def worker_process(task: str, database_url: str, log: Path, settings: Mapping[str, str]
                   ) -> Iterator[subprocess.Popen[bytes]]:
    """A `task` worker on the test's database, its output appended to `log`."""
    env = {**os.environ, "DATABASE_URL": database_url, "WORKER_SECONDS": "60",
           "UPLOAD_DIR": str(log.parent / "uploads"), "LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(ROOT), **settings}
    env.pop("REDIS_URL", None)
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, __file__, task], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def main(task: str) -> None:
    from marketplace import create_app
    from marketplace.db import session_scope, utcnow
    from marketplace.delivery.runner import send_due_pushes
    from marketplace.mail.runner import send_due_mails

    run = {"push": send_due_pushes, "mail": send_due_mails}[task]
    app = create_app({"REDIS_URL": None, "RATELIMIT_ENABLED": False})
    engine = app.extensions["engine"]
    deadline = time.monotonic() + float(os.environ.get("WORKER_SECONDS") or 60)
    with app.app_context():
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                run(session, utcnow())
            time.sleep(0.2)


if __name__ == "__main__":
    main(sys.argv[1])
