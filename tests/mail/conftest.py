"""E-mail at the wire: the app's real mail worker and smtplib against a real SMTP server.

The app is built as tests/conftest.py builds it, plus mail settings pointing at
`SmtpServer` (aiosmtpd on loopback).  What arrives is parsed with the `email`
package as a mail client would; links in it are followed with the test client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from marketplace import create_app
from tests.jobs.conftest import jobs_world  # noqa: F401 - the shared fixture
from tests.mail.mail_world import mail_config
from tests.smtp_server import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    # aiosmtpd logs every command it reads at INFO, the DATA lines at DEBUG: noise
    # around a failure, and the recipient's side of the wire, not the app's log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with SmtpServer() as server:
        yield server


@pytest.fixture
def app(database_url: str, tmp_path: Path, smtp: SmtpServer) -> Iterator[Flask]:
    flask_app = create_app(mail_config(database_url, tmp_path, smtp.port))
    yield flask_app
    flask_app.extensions["engine"].dispose()
