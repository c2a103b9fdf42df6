"""The embedded default: no MAIL_SERVER, so the same worker writes each mail as an
.eml file under MAIL_FOLDER, which any mail client (and the email package) reads."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from sqlmodel import Session

from marketplace import create_app
from marketplace.clusters import invites
from marketplace.jobs import service as jobs
from marketplace.mail.runner import mail_transport
from marketplace.mail.transport import FileTransport
from tests.conftest import NOW, World
from tests.jobs.conftest import job_draft
from tests.mail.mail_world import (
    PUBLIC_URL,
    SOON,
    html_of,
    link_to,
    mail_config,
    run_mail,
    subject,
    text_of,
)


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app as it runs embedded: no mail server configured."""
    flask_app = create_app(mail_config(database_url, tmp_path, None))
    yield flask_app
    flask_app.extensions["engine"].dispose()


def written(folder: Path) -> list[EmailMessage]:
    return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in sorted(folder.glob("*.eml"))]


def test_without_a_mail_server_mails_become_eml_files_that_parse_back(
    app: Flask, session: Session, jobs_world: World, tmp_path: Path,
) -> None:
    folder = tmp_path / "mail"
    assert isinstance(mail_transport(app), FileTransport)
    invites.create_member_invite(session, jobs_world.coordinator, "new@owner.test",
                                 "Epsilon Gardens", NOW, 7)
    jobs.post_job(session, jobs_world.owner_a, job_draft(title="Mow the school field"), NOW)
    run_mail(app, SOON)

    mails = {str(m["To"]): m for m in written(folder)}
    assert sorted(mails) == ["b@beta.test", "new@owner.test"]
    invite, job = mails["new@owner.test"], mails["b@beta.test"]
    assert subject(invite) == "Valley coordinator invites you to Valley"
    assert subject(job) == "New overflow job near Annex, Toronto: Mow the school field"
    for message in (invite, job):
        assert message["From"] == "Valley cluster <no-reply@marketplace.test>"
        assert str(message["Message-ID"]).startswith("<delivery-")
        assert text_of(message).strip() and "<html" in html_of(message)
    assert "Epsilon Gardens" in text_of(invite)
    assert link_to(invite, "/invite/").startswith("/invite/")
    assert f"{PUBLIC_URL}/jobs/" in text_of(job)
    assert job["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    run_mail(app, SOON)  # nothing is due any more: no file twice
    assert len(list(folder.glob("*.eml"))) == 2
