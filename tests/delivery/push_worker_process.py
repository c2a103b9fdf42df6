"""A push worker in its own process, for the crash test (test_push_crash.py).

    DATABASE_URL=... VAPID_PRIVATE_KEY=... PUSH_SERVICE_HOSTS=127.0.0.1 \\
    PUSH_LEASE_SECONDS=2 SECRET_KEY=... python tests/delivery/push_worker_process.py

Builds the app from the environment, as a deployed scheduler process does, and
runs the scheduled push task (`send_due_pushes`, real clock) every 0.2 s until
it is killed -- or, so that a forgotten one never lingers, PUSH_WORKER_SECONDS
(default 60) have passed.
"""

from __future__ import annotations

import os
import time

from marketplace import create_app
from marketplace.db import session_scope, utcnow
from marketplace.delivery.runner import send_due_pushes


def main() -> None:
    app = create_app({"REDIS_URL": None, "RATELIMIT_ENABLED": False})
    engine = app.extensions["engine"]
    deadline = time.monotonic() + float(os.environ.get("PUSH_WORKER_SECONDS") or 60)
    with app.app_context():
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                send_due_pushes(session, utcnow())
            time.sleep(0.2)


if __name__ == "__main__":
    main()
