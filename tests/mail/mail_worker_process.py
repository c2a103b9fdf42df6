"""A mail worker in its own process, for the crash test (test_mail_crash.py).

    DATABASE_URL=... SECRET_KEY=... MAIL_SERVER=127.0.0.1 MAIL_PORT=... \\
    MAIL_LEASE_SECONDS=2 python tests/mail/mail_worker_process.py

Builds the app from the environment, as a deployed scheduler process does, and
runs the scheduled mail task (`send_due_mails`, real clock) every 0.2 s until it
is killed -- or, so that a forgotten one never lingers, MAIL_WORKER_SECONDS
(default 60) have passed.
"""

from __future__ import annotations

import os
import time

from marketplace import create_app
from marketplace.db import session_scope, utcnow
from marketplace.mail.runner import send_due_mails


def main() -> None:
    app = create_app({"REDIS_URL": None, "RATELIMIT_ENABLED": False})
    engine = app.extensions["engine"]
    deadline = time.monotonic() + float(os.environ.get("MAIL_WORKER_SECONDS") or 60)
    with app.app_context():
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                send_due_mails(session, utcnow())
            time.sleep(0.2)


if __name__ == "__main__":
    main()
