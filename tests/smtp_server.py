"""A real SMTP server on loopback for tests, built on ``aiosmtpd``.

Tests point the app's real SMTP client (``smtplib``, its own sockets, nothing
patched) at this server and then read what arrived, parsed the way a mail client
would parse it.  So a test sees the bytes the recipient would get, not the message
the app merely *meant* to send.

The server can also be scripted to answer the way real servers do when things go
wrong: a permanent refusal of one recipient (``refuse``) and transient failures at
DATA (``fail_next``), to exercise the retry / give-up decisions.  It can also keep a
message it has stored waiting for its reply (``hold_reply``), so that a sender can be
killed after the server has the mail but before the sender heard so.

Usage::

    with SmtpServer() as smtp:
        transport = SmtpTransport(smtp.host, smtp.port, use_tls=False, use_ssl=False,
                                  username=None, password=None)
        ...  # make the app send
        [message] = smtp.wait_for(1)
        assert message["Subject"] == "New job"
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One accepted DATA transaction: who it was from and to, as the envelope said."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class _EphemeralController(Controller):
    """aiosmtpd 1.4 binds port 0 fine but then pokes port 0 to check the server is up
    (aio-libs/aiosmtpd#388, fix unreleased in #381).  Reading the port the OS chose
    before the poke lets tests run in parallel without guessing free ports."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _Handler:
    """aiosmtpd hooks; they run on the server's event-loop thread, so every piece of
    shared state goes through the owner's condition."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        with self.owner._changed:
            self.owner._rcpts.append(address)
            refusal = self.owner._refusals.get(address.lower())
            if refusal is not None:
                reply = f"{refusal[0]} {refusal[1]}"
                self.owner._rejected.append(f"RCPT TO:<{address}> -> {reply}")
                self.owner._changed.notify_all()
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # decode_data is off (aiosmtpd's default), so content is the raw bytes received.
        content = envelope.content
        assert isinstance(content, bytes)
        with self.owner._changed:
            if self.owner._failures:
                code, text = self.owner._failures.pop(0)
                reply = f"{code} {text}"
                self.owner._rejected.append(
                    f"DATA for {', '.join(envelope.rcpt_tos)} -> {reply}")
                self.owner._changed.notify_all()
                return reply
            message = email.message_from_bytes(content, policy=email.policy.default)
            self.owner._envelopes.append(Received(
                str(envelope.mail_from), tuple(envelope.rcpt_tos), content))
            self.owner._messages.append(message)
            hold = self.owner._hold_at == len(self.owner._messages)
            if hold:
                self.owner._hold_at = None
                self.owner._holding = True
            self.owner._changed.notify_all()
        while hold:  # stored; the reply waits for release() (the loop keeps serving others)
            await asyncio.sleep(0.02)
            with self.owner._changed:
                hold = self.owner._holding
        return "250 OK: queued"


class SmtpServer:
    """An SMTP server on 127.0.0.1 and an OS-chosen port, for the life of a ``with``.

    Thread-safe: the server runs on its own thread; the lists are read through
    properties that return copies, and ``wait_for`` blocks on a condition.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._messages: list[EmailMessage] = []
        self._envelopes: list[Received] = []
        self._refusals: dict[str, tuple[int, str]] = {}
        self._failures: list[tuple[int, str]] = []
        self._rejected: list[str] = []
        self._rcpts: list[str] = []
        self._hold_at: int | None = None
        self._holding = False
        # server_hostname: the greeting needs a name; the default asks DNS (getfqdn),
        # which can take seconds on a machine without a resolver.
        self._controller = _EphemeralController(_Handler(self), hostname=HOST, port=0,
                                                server_hostname="smtp.test")
        self.host = HOST
        self.port = 0

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        self.port = int(self._controller.port)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()
        self._controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        """Accepted messages, parsed as a mail client would (``policy.default``)."""
        with self._changed:
            return list(self._messages)

    @property
    def envelopes(self) -> list[Received]:
        """The SMTP envelope of each accepted message, in the same order."""
        with self._changed:
            return list(self._envelopes)

    @property
    def recipients_tried(self) -> list[str]:
        """Every ``RCPT TO`` address a client gave, accepted or refused, in order."""
        with self._changed:
            return list(self._rcpts)

    @property
    def rejected(self) -> list[str]:
        """Every scripted refusal the server answered, for test failure messages."""
        with self._changed:
            return list(self._rejected)

    def refuse(self, address: str, code: int = 550, text: str = "5.1.1 No such user") -> None:
        """Answer ``RCPT TO`` for ``address`` with this reply from now on (a mailbox
        that does not exist, by default: the classic permanent bounce)."""
        with self._changed:
            self._refusals[address.lower()] = (code, text)

    def allow(self, address: str) -> None:
        """Accept ``address`` again (its owner fixed the mailbox)."""
        with self._changed:
            self._refusals.pop(address.lower(), None)

    def hold_reply(self, nth: int = 1) -> None:
        """Store the ``nth`` message accepted from now on as usual (it is in
        ``messages``), but keep its sender waiting for the 250 until ``release``: the
        mail has arrived and the sender does not know it yet."""
        with self._changed:
            self._hold_at = len(self._messages) + nth
            self._holding = False

    @property
    def holding(self) -> bool:
        """Whether a stored message's reply is being held back now."""
        with self._changed:
            return self._holding

    def wait_holding(self, timeout: float = 10) -> None:
        """Block until ``hold_reply``'s message arrived and its reply is held."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._holding:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no reply held within {timeout:g} s; "
                        f"{self._describe(len(self._messages) + 1, timeout)}")
                self._changed.wait(left)

    def release(self) -> None:
        """Send the held reply (to a sender that may be long gone); hold no more."""
        with self._changed:
            self._holding = False
            self._hold_at = None

    def fail_next(self, n: int = 1, code: int = 451, text: str = "4.3.0 Try again later") -> None:
        """Answer the next ``n`` DATA commands with this reply (a transient failure by
        default, as a greylisting or overloaded server gives)."""
        with self._changed:
            self._failures.extend([(code, text)] * n)

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived; return a copy of them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(self._describe(count, timeout))
                self._changed.wait(left)
            return list(self._messages)

    def _describe(self, count: int, timeout: float) -> str:
        got = [f"  {e.mail_from} -> {', '.join(e.rcpt_tos)}: {m['Subject']!r}"
               for e, m in zip(self._envelopes, self._messages, strict=True)]
        lines = [f"expected {count} message(s) at {self.host}:{self.port} within "
                 f"{timeout:g} s, got {len(self._messages)}", *got]
        if self._rejected:
            lines += ["refused by the script:", *(f"  {r}" for r in self._rejected)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"SmtpServer({self.host}:{self.port}, {len(self.messages)} message(s))"
