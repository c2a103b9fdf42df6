"""The mail transports against a real SMTP server on loopback, and the .eml folder.

Nothing is patched: ``smtplib`` talks to ``aiosmtpd`` over a socket, and what
arrives is parsed back the way a mail client would, so these tests check the bytes a
recipient gets and the outcome the delivery worker would record.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from marketplace.config import load_config
from marketplace.mail.transport import (
    FileTransport,
    MailAnswer,
    SmtpTransport,
    transport_from_config,
)
from tests.smtp_server import SmtpServer

SENDER = "Cooperativa Peñalolén <no-reply@marketplace.test>"
SUBJECT = "Nuevo trabajo: poda de árboles en Ñuñoa — ¿lo tomas? (año 2026)"
PLAIN = "Hola Begoña,\n\nHay un trabajo de poda cerca de ti: 3 árboles, mañana a las 8:00.\n"
HTML = "<p>Hola Begoña,</p><p>Hay un trabajo de <strong>poda</strong> cerca de ti.</p>\n"
CSV = "fecha,descripción,importe\n2026-06-01,Poda de árboles,\"1.234,56 €\"\n".encode()


def build_message(to: str = "begona@example.org", *, cc: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = SUBJECT
    message["Message-ID"] = make_msgid(domain="marketplace.test")
    message.set_content(PLAIN)
    message.add_alternative(HTML, subtype="html")
    message.add_attachment(CSV, maintype="text", subtype="csv", filename="liquidación-junio.csv")
    return message


def smtp_to(server: SmtpServer, *, username: str | None = None,
            password: str | None = None) -> SmtpTransport:
    return SmtpTransport(server.host, server.port, use_tls=False, use_ssl=False,
                         username=username, password=password, timeout=5,
                         local_hostname="client.test")


def assert_intact(received: EmailMessage, sent: EmailMessage) -> None:
    """Headers, both alternatives and the attachment bytes survived the trip."""
    assert received["Subject"] == SUBJECT
    assert received["From"] == SENDER
    assert received["To"] == sent["To"]
    assert received["Message-ID"] == sent["Message-ID"]
    plain = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    # On the wire (and in .eml files) text lines end in CRLF, SMTP's canonical form;
    # mail clients show them as line breaks, so compare the text, not the line ends.
    assert _lines(plain.get_content()) == PLAIN
    assert _lines(html.get_content()) == HTML
    [attachment] = list(received.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_filename() == "liquidación-junio.csv"
    assert attachment.get_payload(decode=True) == CSV


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def closed_port() -> int:
    """A loopback port nobody listens on (bound for a moment, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- SMTP -------------------------------------------------------------------------


def test_a_multipart_message_with_an_attachment_arrives_intact(smtp: SmtpServer) -> None:
    message = build_message()

    answer = smtp_to(smtp).send(message)

    assert answer == MailAnswer("sent", 250)
    [received] = smtp.wait_for(1)
    assert_intact(received, message)
    [envelope] = smtp.envelopes
    assert envelope.mail_from == "no-reply@marketplace.test"
    assert envelope.rcpt_tos == ("begona@example.org",)


def test_a_refused_recipient_is_permanent_and_nothing_is_delivered(smtp: SmtpServer) -> None:
    smtp.refuse("nadie@example.org")

    answer = smtp_to(smtp).send(build_message("nadie@example.org"))

    assert answer.outcome == "permanent"
    assert answer.code == 550
    assert "5.1.1 No such user" in answer.reason
    assert smtp.messages == []
    assert smtp.rejected == ["RCPT TO:<nadie@example.org> -> 550 5.1.1 No such user"]


def test_a_transient_refusal_of_the_only_recipient_is_retried(smtp: SmtpServer) -> None:
    smtp.refuse("lleno@example.org", 452, "4.2.2 Mailbox full")

    answer = smtp_to(smtp).send(build_message("lleno@example.org"))

    assert (answer.outcome, answer.code) == ("retry", 452)


def test_a_partial_refusal_is_permanent_so_the_others_do_not_get_it_twice(
        smtp: SmtpServer) -> None:
    smtp.refuse("nadie@example.org")

    answer = smtp_to(smtp).send(build_message("begona@example.org", cc="nadie@example.org"))

    assert (answer.outcome, answer.code) == ("permanent", 550)
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ("begona@example.org",)


def test_a_transient_failure_at_data_is_retried_and_the_retry_goes_through(
        smtp: SmtpServer) -> None:
    smtp.fail_next(1)
    transport = smtp_to(smtp)
    message = build_message()

    first = transport.send(message)

    assert first.outcome == "retry"
    assert first.code == 451
    assert "4.3.0 Try again later" in first.reason
    assert smtp.messages == []
    assert transport.send(message).outcome == "sent"
    [received] = smtp.wait_for(1)
    assert_intact(received, message)


def test_a_permanent_failure_at_data_is_permanent(smtp: SmtpServer) -> None:
    smtp.fail_next(1, 554, "5.6.0 Message content rejected")

    answer = smtp_to(smtp).send(build_message())

    assert (answer.outcome, answer.code) == ("permanent", 554)
    assert "5.6.0" in answer.reason


def test_no_server_listening_is_retried() -> None:
    transport = SmtpTransport("127.0.0.1", closed_port(), use_tls=False, use_ssl=False,
                              username=None, password=None, timeout=2)

    answer = transport.send(build_message())

    assert answer.outcome == "retry"
    assert answer.code is None
    assert "ConnectionRefusedError" in answer.reason


def test_a_server_that_never_greets_times_out_and_is_retried() -> None:
    with socket.socket() as silent:  # accepts the TCP connection, never says 220
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        transport = SmtpTransport("127.0.0.1", silent.getsockname()[1], use_tls=False,
                                  use_ssl=False, username=None, password=None, timeout=0.3)

        answer = transport.send(build_message())

    assert answer.outcome == "retry"
    assert answer.code is None


def test_a_session_problem_is_retried_never_a_reason_to_drop_the_message(
        smtp: SmtpServer) -> None:
    # Our test server offers no AUTH: to the client that is the same as bad settings,
    # which an operator fixes; the queued mail must survive until then.
    answer = smtp_to(smtp, username="mailer", password="s3cret-password").send(build_message())

    assert answer.outcome == "retry"
    assert "s3cret-password" not in answer.reason
    assert smtp.messages == []


def test_tls_and_ssl_together_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        SmtpTransport("smtp.example.org", 465, use_tls=True, use_ssl=True, username=None,
                      password=None)


def test_the_password_never_shows_in_the_transport_repr() -> None:
    transport = SmtpTransport("smtp.example.org", 587, use_tls=True, use_ssl=False,
                              username="mailer", password="s3cret-password")

    assert "s3cret-password" not in repr(transport)


# --- .eml files ---------------------------------------------------------------------


def test_file_transport_writes_a_message_that_parses_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "instance" / "mail"  # created on first use
    message = build_message()
    caplog.set_level(logging.INFO, logger="marketplace.mail.transport")

    answer = FileTransport(folder).send(message)

    assert answer.outcome == "sent"
    [path] = list(folder.iterdir())  # no temporary file left behind
    assert path.name.endswith(".eml")
    assert path.name == answer.reason
    assert message["Message-ID"].strip("<>") in path.name
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert_intact(parsed, message)
    [record] = [r for r in caplog.records if r.name == "marketplace.mail.transport"]
    line = record.getMessage()
    assert str(path) in line
    assert "begona@example.org" in line
    assert "Hola" not in line and "poda" not in line


def test_file_transport_writes_a_retried_message_once(tmp_path: Path) -> None:
    message = build_message()
    transport = FileTransport(tmp_path)

    assert transport.send(message).outcome == "sent"
    assert transport.send(message).outcome == "sent"

    assert len(list(tmp_path.glob("*.eml"))) == 1
    assert transport.send(build_message()).outcome == "sent"  # a new id is a new mail
    assert len(list(tmp_path.glob("*.eml"))) == 2


def test_file_transport_cannot_write_is_retried(tmp_path: Path) -> None:
    blocker = tmp_path / "mail"
    blocker.write_text("a file where the folder should be")

    answer = FileTransport(blocker).send(build_message())

    assert answer.outcome == "retry"


# --- configuration ------------------------------------------------------------------

BASE_ENV = {"SECRET_KEY": "test-secret-key"}  # no instance/secret_key written


def test_without_a_mail_server_messages_go_to_the_folder(tmp_path: Path) -> None:
    config = load_config({**BASE_ENV, "MAIL_FOLDER": str(tmp_path / "outbox")})

    transport = transport_from_config(config)

    assert isinstance(transport, FileTransport)
    assert transport.folder == tmp_path / "outbox"
    assert config["MAIL_FROM"] == "Coopetition marketplace <no-reply@localhost>"


def test_the_default_mail_folder_is_under_instance() -> None:
    config = load_config(BASE_ENV)

    assert config["MAIL_SERVER"] is None
    assert Path(config["MAIL_FOLDER"]) == Path(config["INSTANCE_DIR"]) / "mail"


@pytest.mark.parametrize(("env", "port", "tls", "ssl"), [
    ({}, 25, False, False),
    ({"MAIL_USE_TLS": "true"}, 587, True, False),
    ({"MAIL_USE_SSL": "yes"}, 465, False, True),
    ({"MAIL_USE_TLS": "1", "MAIL_PORT": "2525"}, 2525, True, False),
])
def test_a_mail_server_picks_smtp_with_the_port_of_its_mode(
        env: dict[str, str], port: int, tls: bool, ssl: bool) -> None:
    config = load_config({**BASE_ENV, "MAIL_SERVER": "smtp.example.org",
                          "MAIL_USERNAME": "mailer", "MAIL_PASSWORD": "pw",
                          "MAIL_TIMEOUT_SECONDS": "7.5", **env})

    transport = transport_from_config(config)

    assert isinstance(transport, SmtpTransport)
    assert (transport.host, transport.port) == ("smtp.example.org", port)
    assert (transport.use_tls, transport.use_ssl) == (tls, ssl)
    assert transport.username == "mailer"
    assert transport.timeout == 7.5


def test_the_configured_smtp_transport_delivers(smtp: SmtpServer) -> None:
    config = load_config({**BASE_ENV, "MAIL_SERVER": smtp.host, "MAIL_PORT": str(smtp.port)})
    message = build_message()

    assert transport_from_config(config).send(message).outcome == "sent"

    [received] = smtp.wait_for(1)
    assert_intact(received, message)


def test_wait_for_says_what_did_arrive(smtp: SmtpServer) -> None:
    smtp.refuse("nadie@example.org")
    smtp_to(smtp).send(build_message("nadie@example.org"))

    with pytest.raises(AssertionError, match=r"(?s)expected 1 message.*got 0.*nadie@"):
        smtp.wait_for(1, timeout=0.1)
