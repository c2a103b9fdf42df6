"""Hand one finished e-mail message to whatever carries it: an SMTP server, or a folder.

The answer is returned, never raised: the delivery worker decides what "sent",
"retry" and "permanent" mean for its row, exactly as it does for Web Push.  The
line drawn here is the one that matters for retries: a 4xx reply, a dropped
connection or a timeout may go away by itself (try again later); a 5xx reply
about *this message* (unknown mailbox, message refused) will not, so retrying
would only hammer the server and delay the give-up.

Without a mail server (the embedded default) messages become ``.eml`` files under
``instance/mail/`` that any mail client opens, so a developer sees what users would
receive.  Nothing here imports flask: the worker, the CLI and tests use it alike.
"""

from __future__ import annotations

import dataclasses
import email.policy
import logging
import os
import re
import smtplib
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Literal, Protocol
from uuid import uuid4

log = logging.getLogger(__name__)

#: Server texts can be long (some servers explain their policy in ten lines); the
#: answer carries enough to diagnose and no more.
_REASON_LIMIT = 200
#: Characters allowed in a file name taken from a Message-ID; the rest become "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")
_ID_LIMIT = 120

Outcome = Literal["sent", "retry", "permanent"]


@dataclass(frozen=True)
class MailAnswer:
    """What the server said about one message: the outcome for the delivery row, the
    SMTP reply code when there was one, and a short reason for the log."""

    outcome: Outcome
    code: int | None = None
    reason: str = ""
    #: the server refused the recipient's address itself (RCPT), not our sender, the
    #: message or the session: only this says the address is bad
    recipient: bool = False


class MailTransport(Protocol):
    """Anything that can carry one message; the delivery worker only needs this."""

    def send(self, message: EmailMessage) -> MailAnswer: ...


def _short(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return " ".join(text.split())[:_REASON_LIMIT]


def _by_code(code: int, text: bytes | str) -> MailAnswer:
    """RFC 5321 §4.2.1: 5yz is a permanent negative reply, 4yz a transient one.

    Anything else where a success was expected (a garbled reply, smtplib's -1) is
    treated as transient: it says nothing about the message itself.
    """
    outcome: Outcome = "permanent" if 500 <= code <= 599 else "retry"
    return MailAnswer(outcome, code, _short(text))


def _recipients(message: EmailMessage) -> list[str]:
    fields = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
    return [address for _, address in getaddresses(fields) if address]


class SmtpTransport:
    """Send through an SMTP server (submission port with STARTTLS, implicit TLS, or
    plain relay), one connection per message.

    One connection per message keeps it simple and robust: no pooled connection can
    go stale between a quiet night and the morning's notifications, and one bad
    message cannot poison the session for the next.  Our volume (one mail per
    notification per person) does not need more.  Safe to share between threads:
    nothing is kept between calls.
    """

    def __init__(self, host: str, port: int, *, use_tls: bool, use_ssl: bool,
                 username: str | None, password: str | None, timeout: float = 20,
                 local_hostname: str | None = None) -> None:
        if use_tls and use_ssl:
            # STARTTLS inside implicit TLS is not a thing; refuse at start, not per mail.
            raise ValueError("MAIL_USE_TLS (STARTTLS) and MAIL_USE_SSL (implicit TLS) "
                             "exclude each other: set one")
        self.host = host
        self.port = port
        self.use_tls = use_tls
        self.use_ssl = use_ssl
        self.username = username
        self._password = password
        self.timeout = timeout
        self.local_hostname = local_hostname

    def __repr__(self) -> str:  # never the password
        return (f"SmtpTransport({self.host!r}, {self.port}, use_tls={self.use_tls}, "
                f"use_ssl={self.use_ssl}, username={self.username!r})")

    def _client(self) -> smtplib.SMTP:
        if self.use_ssl:
            return smtplib.SMTP_SSL(local_hostname=self.local_hostname, timeout=self.timeout,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(local_hostname=self.local_hostname, timeout=self.timeout)

    def send(self, message: EmailMessage) -> MailAnswer:
        """Deliver ``message`` to the recipients in its headers; never raises.

        Failures while opening the session (connect, greeting, EHLO, STARTTLS, login)
        are always "retry": they are about the server or our settings, not about
        this message, and a wrong password must not throw away every queued mail.
        Once the message is being submitted, the reply code decides.
        """
        client = self._client()
        session_open = False  # past login: errors from here on are about the message
        polite = True  # QUIT is worth sending (the server is still talking to us)
        try:
            client.connect(self.host, self.port)
            if self.use_tls:
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self._password or "")
            session_open = True
            refused = client.send_message(message)
            answer = self._partial(refused) if refused else MailAnswer("sent", 250)
        except smtplib.SMTPRecipientsRefused as error:
            answer = self._refused(error.recipients)
        except smtplib.SMTPServerDisconnected as error:
            polite = False
            answer = MailAnswer("retry", None, _short(f"disconnected: {error}"))
        except smtplib.SMTPResponseException as error:
            # SMTPConnectError, SMTPHeloError, SMTPAuthenticationError come before the
            # message; SMTPSenderRefused and SMTPDataError are about it.
            if session_open:
                answer = _by_code(error.smtp_code, error.smtp_error)
            else:
                answer = MailAnswer("retry", error.smtp_code, _short(error.smtp_error))
        except smtplib.SMTPNotSupportedError as error:
            # Before the message: the server lacks STARTTLS or AUTH we were told to use.
            # During it: the message needs SMTPUTF8 the server lacks; no retry fixes that.
            answer = MailAnswer("permanent" if session_open else "retry", None,
                                _short(f"not supported: {error}"))
        except (smtplib.SMTPException, OSError) as error:  # refused, reset, timeout, TLS
            polite = False
            answer = MailAnswer("retry", None, _short(f"{type(error).__name__}: {error}"))
        except ValueError as error:
            # smtplib's verdict on the message itself (no recipients, bad Resent-*
            # headers), or on our settings before it.
            answer = MailAnswer("permanent" if session_open else "retry", None,
                                _short(f"{type(error).__name__}: {error}"))
        finally:
            self._close(client, polite)
        self._log(message, answer)
        return answer

    @staticmethod
    def _refused(recipients: Mapping[str, tuple[int, bytes]]) -> MailAnswer:
        """All recipients refused: permanent if any refusal is, so one hard bounce
        among soft ones is not retried into a second delivery attempt forever."""
        answers = [dataclasses.replace(_by_code(code, text), recipient=True)
                   for code, text in recipients.values()]
        hard = [answer for answer in answers if answer.outcome == "permanent"]
        return (hard or answers or [MailAnswer("retry", None, "all recipients refused")])[0]

    @staticmethod
    def _partial(refused: Mapping[str, tuple[int, bytes]]) -> MailAnswer:
        """Some recipients refused, the others accepted.  We send one recipient per
        message, so this is rare; retrying would deliver twice to the accepted ones,
        hence permanent whatever the code."""
        code, text = next(iter(refused.values()))
        return MailAnswer("permanent", code, _short(text), recipient=True)

    @staticmethod
    def _close(client: smtplib.SMTP, polite: bool) -> None:
        if polite:
            try:
                client.quit()  # closes the socket as well
                return
            except (smtplib.SMTPException, OSError):
                pass
        client.close()

    def _log(self, message: EmailMessage, answer: MailAnswer) -> None:
        level = logging.INFO if answer.outcome == "sent" else logging.WARNING
        log.log(level, "mail %s via %s:%s: %s %s %s", message.get("Message-ID", "(no id)"),
                self.host, self.port, answer.outcome, answer.code or "", answer.reason)


class FileTransport:
    """Write each message as an ``.eml`` file: the embedded default, with no mail server.

    Files are named ``<UTC timestamp>-<Message-ID>.eml`` so a folder listing reads in
    order and a message is easy to find by the id the logs show.  A message whose
    Message-ID is already in the folder is not written again: the delivery worker
    may retry after a crash between writing and recording, and a retry must not
    look like a second mail.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def send(self, message: EmailMessage) -> MailAnswer:
        message_id = str(message.get("Message-ID", "")).strip()
        safe_id = _UNSAFE.sub("_", message_id.strip("<>"))[:_ID_LIMIT]
        to = ", ".join(_recipients(message)) or "(no recipients)"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if safe_id:
                existing = sorted(self.folder.glob(f"*-{safe_id}.eml"))
                if existing:
                    log.info("mail %s already written to %s for %s", message_id,
                             existing[0], to)
                    return MailAnswer("sent", None, f"already written: {existing[0].name}")
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            path = self.folder / f"{stamp}-{safe_id or 'no-id-' + uuid4().hex}.eml"
            # SMTP policy: CRLF line ends and RFC 2047 headers, the bytes a server would
            # receive, so any mail client (and email.message_from_bytes) reads it.
            data = message.as_bytes(policy=email.policy.SMTP)
            self._write_atomically(path, data)
        except OSError as error:
            log.warning("mail %s could not be written to %s: %s", message_id or "(no id)",
                        self.folder, error)
            return MailAnswer("retry", None, _short(f"{type(error).__name__}: {error}"))
        log.info("mail %s written to %s for %s", message_id or "(no id)", path, to)
        return MailAnswer("sent", None, path.name)

    def _write_atomically(self, path: Path, data: bytes) -> None:
        """A reader (a mail client watching the folder, a test) never sees half a file:
        write under a hidden temporary name in the same folder, then rename."""
        fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".eml.tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def transport_from_config(config: Mapping[str, Any]) -> MailTransport:
    """SMTP when ``MAIL_SERVER`` is set, else ``.eml`` files in ``MAIL_FOLDER``: the same
    code runs embedded and in production, the settings pick."""
    server = config.get("MAIL_SERVER")
    if server:
        return SmtpTransport(
            str(server), int(config.get("MAIL_PORT") or 25),
            use_tls=bool(config.get("MAIL_USE_TLS")),
            use_ssl=bool(config.get("MAIL_USE_SSL")),
            username=config.get("MAIL_USERNAME") or None,
            password=config.get("MAIL_PASSWORD") or None,
            timeout=float(config.get("MAIL_TIMEOUT_SECONDS") or 20))
    return FileTransport(Path(config["MAIL_FOLDER"]))
