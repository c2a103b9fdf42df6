"""Invites and password resets by e-mail, from the page that asks for them to the mail
at the SMTP server and back through the link in it.

The person has nothing but the mail: no page shows them the invite link or the
reset link (the coordinator's flash does, but the invited person never sees it).
Spanish is the invited business's cluster's language, and the language the owner
who forgot the password chose in an English-speaking cluster; the texts are compared
with the es catalog
(gettext under that locale) and a date, which Babel spells in Spanish whatever
the catalog holds, makes sure the mail really was written in Spanish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from sqlalchemy import text
from sqlmodel import Session, SQLModel, select

from marketplace.clusters import agreements, service
from marketplace.clusters.models import Cluster, Invite, Member, User
from marketplace.delivery.models import DeliveryStatus, OutboundMail
from tests.conftest import NOW, PASSWORD, World, invite_member, login, terms
from tests.mail.mail_world import (
    PUBLIC_URL,
    fresh,
    html_of,
    link_to,
    mail_rows,
    run_mail,
    subject,
    text_of,
)
from tests.smtp_server import SmtpServer

LOCALE = "es_MX"
ZONE = "America/Mexico_City"
PURPOSE = ("Compartir el trabajo que nos sobra, de forma justa y sin quitarnos clientes. "
           "Las cuotas se revisan cada año.")
FIRST_SENTENCE = "Compartir el trabajo que nos sobra, de forma justa y sin quitarnos clientes."
NEW_PASSWORD = "otra clave bastante larga"


@pytest.fixture
def valle(session: Session) -> tuple[Cluster, User]:
    """A Spanish-speaking cluster (es_MX, Mexico City) with its agreement in force."""
    cluster, coordinator = service.create_cluster(
        session, service.ClusterSettings(name="Cooperativa del Valle", currency="MXN",
                                         default_locale=LOCALE, timezone=ZONE),
        "Begoña Ruiz", "begona@valle.test", PASSWORD, NOW)
    agreements.publish_agreement(session, coordinator, terms(purpose=PURPOSE), NOW)
    return cluster, coordinator


def spanish(app: Flask, message: str, **params: object) -> str:
    """`message` as the es catalog has it (the source text while it is untranslated)."""
    with app.test_request_context("/"), force_locale(LOCALE):
        return gettext(message, **params)


def test_an_invite_can_be_accepted_from_the_mail_alone(
    app: Flask, client: FlaskClient, session: Session, smtp: SmtpServer,
    valle: tuple[Cluster, User],
) -> None:
    cluster, coordinator = valle
    login(client, coordinator)
    response = client.post("/invites", data={"business_name": "Jardines Ñuñoa",
                                              "email": "Dueno@Nunoa.test"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert smtp.messages == []  # queued with the invite, sent by the worker after commit

    run_mail(app)
    [mail] = smtp.wait_for(1)
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ("dueno@nunoa.test",)
    assert mail["To"] == "dueno@nunoa.test"
    invite = fresh(session).exec(select(Invite).where(Invite.email == "dueno@nunoa.test")).one()

    body, html = text_of(mail), html_of(mail)
    assert subject(mail) == spanish(app, "%(inviter)s invites you to %(cluster)s",
                                    inviter="Begoña Ruiz", cluster="Cooperativa del Valle")
    expires = format_datetime(invite.expires_at, "medium", tzinfo=ZoneInfo(ZONE),
                              locale=LOCALE)
    for line in (
        spanish(app, "%(inviter)s invites you to %(cluster)s.", inviter="Begoña Ruiz",
                cluster="Cooperativa del Valle"),
        spanish(app, "Your business %(business)s is invited to join the cluster; you sign "
                "up as its owner.", business="Jardines Ñuñoa"),
        f"{spanish(app, 'What the cluster is for')}: {FIRST_SENTENCE}",
        spanish(app, "The link works once, until %(when)s.", when=expires),
    ):
        assert line in body, (line, body)
    assert "Las cuotas" not in body  # the purpose sentence, not the whole agreement
    english = format_datetime(invite.expires_at, "medium", tzinfo=ZoneInfo(ZONE), locale="en")
    assert english != expires and english not in body  # Babel wrote the date in Spanish
    assert '<html lang="es-MX">' in html
    assert "Begoña Ruiz" in html and FIRST_SENTENCE in html and expires in html

    path = link_to(mail, "/invite/")
    assert f'href="{PUBLIC_URL}{path}"' in html  # the button goes where the text link goes

    # The invited owner opens the link (no session, no cookie) and signs up.
    stranger = app.test_client()
    page = stranger.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    assert "Jardines Ñuñoa" in page.get_data(as_text=True)
    signed_up = stranger.post(path, data={"name": "Ñuño Pérez", "password": PASSWORD})
    assert signed_up.status_code == 302, signed_up.get_data(as_text=True)
    owner = fresh(session).exec(select(User).where(User.email == "dueno@nunoa.test")).one()
    assert owner.name == "Ñuño Pérez" and owner.role == "owner"
    assert owner.cluster_id == cluster.id
    business = session.get(Member, owner.member_id)
    assert business is not None and business.name == "Jardines Ñuñoa"
    assert stranger.get(path).status_code == 410  # once only
    mail_row = fresh(session).exec(select(OutboundMail).where(
        OutboundMail.to_address == "dueno@nunoa.test")).one()
    assert [r.status for r in mail_rows(session) if r.mail_id == mail_row.id] == [
        DeliveryStatus.SENT]
    assert mail_row.params == {"invite_id": invite.id}  # no link, no token stored


@pytest.fixture
def spanish_owner(session: Session, world: World) -> User:
    """An owner in an English-speaking cluster (en_CA) who chose Spanish (es): the
    reset mail is in the person's language, not the cluster's."""
    owner = invite_member(session, world.coordinator, "Poda Ñuñoa", "marta@poda.test")
    return service.update_preferences(session, owner, "es", None, None)


def _dump_database(session: Session) -> str:
    """Every value of every row of every table, as text."""
    fresh(session)
    dumped = []
    for table in SQLModel.metadata.sorted_tables:
        for row in session.execute(text(f'SELECT * FROM "{table.name}"')):
            dumped.append(repr(tuple(row)))
    return "\n".join(dumped)


@pytest.fixture
def app_log(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """Everything the app logged, at every level.  aiosmtpd's own log ("mail.log") is
    left out: it is the test's SMTP server, the recipient's side, and logs the DATA."""
    caplog.set_level(logging.DEBUG)

    def logged() -> str:
        return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}"
                         for r in caplog.records if not r.name.startswith("mail.log"))
    yield logged


def test_a_reset_mail_in_the_owners_language_resets_the_password(
    app: Flask, client: FlaskClient, session: Session, smtp: SmtpServer,
    spanish_owner: User, app_log: Callable[[], str],
) -> None:
    asked = client.post("/password/forgot", data={"email": "MARTA@poda.test"})
    assert asked.status_code == 302
    run_mail(app)
    [mail] = smtp.wait_for(1)
    assert smtp.envelopes[0].rcpt_tos == ("marta@poda.test",)
    with app.test_request_context("/"), force_locale("es"):
        title = gettext("Reset your password")
        lines = [gettext("Someone asked to reset the password of your account (%(email)s).",
                         email="marta@poda.test"),
                 gettext("The link works once, for %(minutes)s minutes.", minutes=60),
                 gettext("If it was not you, ignore this mail: your password stays as it is.")]
    assert title == "Restablecer su contraseña"  # the catalog has it: Spanish for sure
    assert subject(mail) == title
    body = text_of(mail)
    for line in lines:
        assert line in body, (line, body)
    assert '<html lang="es">' in html_of(mail)

    path = link_to(mail, "/password/reset/")
    token = path.rsplit("/", 1)[1]
    assert len(token) > 20
    # Neither the database nor the log holds anything that works as the link.
    signature = token.rsplit(".", 1)[-1]
    assert token not in _dump_database(session)
    assert signature not in _dump_database(session)
    assert "password reset mail queued" in app_log()  # the log is captured
    assert token not in app_log() and signature not in app_log()

    reset = app.test_client().post(path, data={"password": NEW_PASSWORD})
    assert reset.status_code == 302, reset.get_data(as_text=True)
    fresh_client = app.test_client()
    assert fresh_client.post("/login", data={"email": "marta@poda.test",
                                             "password": NEW_PASSWORD}).status_code == 302
    assert app.test_client().post("/login", data={"email": "marta@poda.test",
                                                  "password": PASSWORD}).status_code == 401
    assert app.test_client().post(path, data={"password": "y otra más, larga"}
                                  ).status_code == 410  # spent by the reset
    assert token not in app_log() and signature not in app_log()


def test_an_unknown_address_gets_no_mail_and_the_very_same_answer(
    app: Flask, session: Session, smtp: SmtpServer, spanish_owner: User,
) -> None:
    def ask(address: str) -> tuple[int, str | None, str]:
        browser = app.test_client()
        asked = browser.post("/password/forgot", data={"email": address})
        shown = browser.get(asked.headers["Location"])
        return asked.status_code, asked.headers.get("Location"), shown.get_data(as_text=True)

    before = len(mail_rows(session))
    unknown = ask("nadie@poda.test")
    assert len(mail_rows(session)) == before  # nothing queued
    known = ask("marta@poda.test")
    assert unknown == known
    assert unknown[0] == 302
    run_mail(app)
    assert [m["To"] for m in smtp.wait_for(1)] == ["marta@poda.test"]
    assert "nadie@poda.test" not in smtp.recipients_tried
