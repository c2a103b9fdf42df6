"""Socket.IO under bad input: a real server, real clients, payloads no browser sends.

The server listens for two things: the connection (with an optional auth payload
carrying the last notification id seen) and the "replay" event; every other event
name has no handler, and rooms are chosen by the server from the login alone
(tests/realtime/test_connect.py: anonymous connections are refused, each person
joins its own rooms only).  Here an attacker -- the rival cluster's owner, logged in
-- sends wrong types, missing and extra arguments, nested junk, huge numbers, binary
attachments, messages larger than the 64 KiB limit (over websocket and over
long-polling) and raw Engine.IO/Socket.IO frames that are not the protocol at all.

After each barrage: the server answered "replay" with a refusal (or ignored what has
no handler, or dropped the attacker's connection for an oversize or unreadable
frame), no table changed, the attacker sits in no room of ours, a partner's
connection opened before the barrage still gets a job posted afterwards, and a new
connection still works.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
import socketio
import websocket
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.extensions import socketio_of
from marketplace.jobs import service
from marketplace.realtime.rooms import coordinators_room, member_room, user_room
from tests.conftest import IN_CI, PASSWORD, World
from tests.jobs.conftest import give_profile, job_draft
from tests.live import Inbox, live_server, logged_in_cookie, socket_client
from tests.matrix_world import table_digest

LIMIT = 64 * 1024  # max_http_buffer_size in marketplace/__init__.py
REFUSAL = {"error": 'send {"cursor": <int>}'}

#: One argument each, as a client would send it: every one is refused by "replay".
BAD_ARGUMENTS: list[Any] = [
    None, "", "cursor", 17, -1, 2**70, 1.5, float("inf"), True, [], [1, 2], {},
    {"cursor": None}, {"cursor": "12"}, {"cursor": -5}, {"cursor": 2**62},
    {"cursor": 10**99}, {"cursor": 1e308}, {"cursor": True}, {"cursor": [1]},
    {"cursor": {"$gt": 0}}, {"CURSOR": 1}, {"cursor\x00": 1}, {"\ud800": "\udfff"},
    {"cursor": "\ud800"}, {"a": {"b": {"c": {"d": [[[[None]]]]}}}},
    {"cursor": b"\x00\x01"}, b"\xff\xfe\xfd", {"nested": [b"\x00" * 1000, {"x": b"1"}]},
    "é" * 5000,
]
#: Numbers of more than 100 digits: the protocol layer will not even parse them (a
#: quadratic int() is a known denial of service), so the event is dropped unanswered.
UNREADABLE: list[Any] = [10**100, {"cursor": 10**400}, [1, -(10**150)]]
#: Event names a client might try in order to get into rooms or to confuse dispatch.
FOREIGN_EVENTS = ("join", "join_room", "enter_room", "subscribe", "leave_room", "message",
                  "rooms", "connect_error", "*", "", "replay ", "REPLAY", "x" * 2000,
                  "\x00", "\ud83d\ude00")
#: Raw frames after a proper handshake: broken JSON, wrong packet types, attachments
#: announced but never sent, a namespace that does not exist, reserved event names.
RAW_FRAMES: list[str | bytes] = [
    "", "x", "4", "9", "49", "42", "42[]", "42[1]", "42[null]", '42["replay"', "42{}",
    '42"replay"', '42["replay",{"cursor":1e999}]', '42["replay",{"cursor":"\\ud800"}]',
    '42["replay",{"cursor":' + "9" * 5000 + "}]", "42" + "[" * 20_000 + "]" * 20_000,
    '421["replay"]', "43", '431["replay"]', '451-["replay",{"_placeholder":true,"num":0}]',
    '459-["replay",{"_placeholder":true,"num":7}]', '40/nope,', '42/nope,["replay"]',
    '42["connect",{"cursor":"x"}]', '42["disconnect"]', "2", "3", "5", "6", "2probe",
    b"\xff\xfe\x00\x01", b"\x04junk", "4" + "x" * (LIMIT + 1),
]


#: Auth payloads of the CONNECT packet ("40" + this): the login decides, the rest is
#: ignored.
BAD_AUTH = ('"junk"', "42", "[1,2]", '{"cursor":"0"}', '{"cursor":-1}',
            '{"cursor":' + str(2**70) + "}", '{"cursor":{"a":[null]}}', "{}", "null",
            '{"' + "x" * 100 + '":"' + "y" * 1000 + '"}')


@dataclass
class Scene:
    base: str
    session: Session
    world: World
    attacker: socketio.Client
    attacker_cookie: str
    partner: socketio.Client
    partner_inbox: Inbox
    partner_cookie: str
    server: Any  # the app's own Socket.IO


@pytest.fixture
def scene(app: Flask, session: Session, world: World) -> Iterator[Scene]:
    """A live server; the rival's owner (the attacker) and our partner B connected."""
    for owner in (world.owner_a, world.owner_b):
        give_profile(session, owner)
    session.commit()
    with live_server(app) as base:
        attacker_cookie = logged_in_cookie(base, world.other_owner.email, PASSWORD)
        partner_cookie = logged_in_cookie(base, world.owner_b.email, PASSWORD)
        attacker = socket_client(base, attacker_cookie)
        partner = socket_client(base, partner_cookie)
        yield Scene(base, session, world, attacker, attacker_cookie, partner,
                    Inbox(partner), partner_cookie, socketio_of(app))
        for client in (attacker, partner):
            _hang_up_client(client)


def _hang_up_client(client: socketio.Client) -> None:
    """Disconnect without the 3 s wait of `client.disconnect()`: its websocket close
    waits for the server's close frame, which the client's own reader thread usually
    takes first.  Closing the websocket without waiting ends the connection all the
    same (the client notices and disconnects)."""
    if client.connected and client.eio.ws is not None:
        client.eio.ws.close(timeout=0)
    _wait_disconnected(client)


_probes = itertools.count(1)


def _raw_socket(base: str, cookie: str, connect: str = "40") -> websocket.WebSocket:
    """A websocket speaking Engine.IO 4 by hand, connected to the default namespace with
    the given CONNECT packet (an auth payload may follow the "40")."""
    raw = websocket.create_connection(
        base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
        header=[f"Cookie: {cookie}"], timeout=5)
    assert raw.recv().startswith("0{")  # Engine.IO open
    raw.send(connect)
    assert raw.recv().startswith("40{")  # Socket.IO connect accepted
    return raw


def _raw_replay(raw: websocket.WebSocket) -> tuple[list[str], Any]:
    """Ask for everything since id 0; the events replayed before the answer, and it."""
    raw.send('421["replay",{"cursor":0}]')
    before: list[str] = []
    while not (frame := raw.recv()).startswith("431"):
        before.append(frame)
    return before, json.loads(frame[3:])[0]


def _hang_up(raw: websocket.WebSocket) -> None:
    raw.close(timeout=0)  # no waiting for the server's goodbye


def assert_still_serving(scene: Scene) -> None:
    """The partner's old connection gets a job posted now; a new connection works."""
    assert scene.partner.connected, "the partner's connection was dropped"
    today = utcnow().date()
    job = service.post_job(scene.session, scene.world.owner_a, job_draft(
        title=f"Probe {next(_probes)}", starts_on=today + timedelta(days=3),
        ends_on=today + timedelta(days=4)), utcnow())
    got = scene.partner_inbox.wait_for("job.posted", where=lambda d: d["data"]["id"] == job.id)
    assert got is not None, "a notification after the barrage never arrived"
    fresh = _raw_socket(scene.base, scene.partner_cookie)
    try:
        _events, answer = _raw_replay(fresh)
        assert answer["replayed"] >= 1
    finally:
        _hang_up(fresh)


def assert_in_no_room_of_ours(scene: Scene) -> None:
    """Whatever the attacker sent, our rooms' events do not reach it."""
    got = Inbox(scene.attacker)
    world = scene.world
    for room in (member_room(world.member_a_id), member_room(world.member_b_id),
                 coordinators_room(world.cluster.id), user_room(world.owner_a.id)):
        scene.server.emit("secret", {"room": room}, to=room)
    assert got.wait_for("secret", timeout=0.5) is None


def _reply(client: socketio.Client, event: str, argument: Any) -> Any:
    try:
        return client.call(event, argument, timeout=3)
    except socketio.exceptions.TimeoutError:
        return "no answer"


json_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**50), 10**50) | st.floats()
    | st.text(max_size=30) | st.binary(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)


def test_replay_refuses_every_malformed_argument(scene: Scene) -> None:
    before = table_digest(scene.session)
    replies = {repr(a)[:60]: _reply(scene.attacker, "replay", a) for a in BAD_ARGUMENTS}
    assert {a: r for a, r in replies.items() if r != REFUSAL} == {}
    for argument in UNREADABLE:
        with pytest.raises(socketio.exceptions.TimeoutError):
            scene.attacker.call("replay", argument, timeout=0.5)
    assert scene.attacker.call("replay", timeout=5) == REFUSAL  # no argument at all
    # Several arguments (a tuple is sent as separate arguments): the first one counts.
    assert scene.attacker.call("replay", ({"cursor": "x"}, {"cursor": 0}), timeout=5) \
        == REFUSAL
    assert scene.attacker.call("replay", ({"cursor": 0}, "junk", b"\x00"), timeout=5) \
        == {"replayed": 0}
    # A sane id with junk beside it replays (nothing, for this rival) and joins no room.
    assert scene.attacker.call("replay", {"cursor": 0, "room": member_room(1),
                                          "rooms": ["*"]}, timeout=5) == {"replayed": 0}

    @settings(max_examples=40, deadline=None, derandomize=IN_CI,
              database=None if IN_CI else settings.default.database)
    @given(arguments=st.lists(json_junk, max_size=3))
    def any_arguments(arguments: list[Any]) -> None:
        reply = scene.attacker.call("replay", tuple(arguments), timeout=5)
        assert reply in (REFUSAL, {"replayed": 0}), reply

    any_arguments()
    assert table_digest(scene.session) == before
    assert_in_no_room_of_ours(scene)
    assert_still_serving(scene)


def test_events_without_a_handler_are_ignored_and_join_no_room(scene: Scene) -> None:
    before = table_digest(scene.session)
    rooms = [member_room(scene.world.member_a_id), coordinators_room(scene.world.cluster.id),
             user_room(scene.world.owner_a.id)]
    for name in FOREIGN_EVENTS:
        for room in rooms:
            scene.attacker.emit(name, {"room": room, "rooms": rooms})
            scene.attacker.emit(name, room)
    # A connect event sent again by a connected client only replays its own notifications.
    assert scene.attacker.call("connect", {"cursor": 0}, timeout=5) is True
    assert scene.attacker.call("replay", {"cursor": 0}, timeout=5) == {"replayed": 0}
    assert table_digest(scene.session) == before
    assert_in_no_room_of_ours(scene)
    assert_still_serving(scene)


def _wait_disconnected(client: socketio.Client, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    return not client.connected


def test_oversize_messages_are_refused_and_harm_nobody_else(scene: Scene) -> None:
    """Over 64 KiB: a websocket message drops its sender's connection, a connect payload
    is refused, and a long-polling POST (how browsers start) is refused before it is read
    and at once, even from a client that never polls again (marketplace/realtime/limits.py).
    """
    before = table_digest(scene.session)
    big_auth = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        big_auth.connect(scene.base, headers={"Cookie": scene.attacker_cookie},
                         auth={"pad": "x" * (LIMIT + 1)}, transports=["websocket"],
                         wait_timeout=1)
    headers = {"Cookie": scene.attacker_cookie}
    opened = requests.get(f"{scene.base}/socket.io/?EIO=4&transport=polling",
                          headers=headers, timeout=5)
    sid = json.loads(opened.text[1:])["sid"]
    url = f"{scene.base}/socket.io/?EIO=4&transport=polling&sid={sid}"
    assert requests.post(url, data="40", headers=headers, timeout=5).text == "OK"
    refused = requests.post(url, data='42["replay",{"pad":"' + "x" * LIMIT + '"}]',
                            headers=headers, timeout=5)
    assert refused.status_code == 413
    scene.attacker.emit("replay", {"cursor": 1, "pad": "x" * (LIMIT + 1)})
    assert _wait_disconnected(scene.attacker), "an oversize message was accepted"
    assert table_digest(scene.session) == before
    assert_still_serving(scene)


def test_raw_frames_that_break_the_protocol_harm_nobody_else(scene: Scene) -> None:
    before = table_digest(scene.session)
    for frame in RAW_FRAMES:
        raw = _raw_socket(scene.base, scene.attacker_cookie)
        try:
            if isinstance(frame, bytes):
                raw.send_binary(frame)
            else:
                raw.send(frame)
            time.sleep(0.02)
        except (websocket.WebSocketException, OSError):
            pass  # the server already hung up on this connection: a refusal
        finally:
            _hang_up(raw)
    # The login decides who connects; a malformed auth payload replays nothing.
    for auth in BAD_AUTH:
        raw = _raw_socket(scene.base, scene.attacker_cookie, "40" + auth)
        try:
            assert _raw_replay(raw) == ([], {"replayed": 0}), auth
        finally:
            _hang_up(raw)
    assert table_digest(scene.session) == before
    assert_in_no_room_of_ours(scene)
    assert_still_serving(scene)
