"""static/js/live.js keeps the cursor by the rules tests.live.Cursor states.

The storm tests (test_delivery_cursor.py) hold the server to those rules through
`tests.live.Cursor`; this runs the page's own script under node, with a fake
socket, through the same sequences of events, and checks that it shows and numbers
exactly what Cursor does: shared live messages (no number), their sync, numbered
replays of them, repeats, gaps and keys the server does not know.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.live import Cursor

ROOT = Path(__file__).resolve().parents[2]
A, B, C = "a" * 16, "b" * 16, "c" * 16

# Loads live.js with a fake `io` and DOM; reads [kind, message] events from argv and
# prints what the page showed (by batch key), every "replay" it asked for, and the
# auth it would send on its next connect.  Timers are run at the end (the syncs).
HARNESS = r"""
const fs = require("fs");
const [script, eventsJson, builtAt, online] = process.argv.slice(2);
const listeners = [];
const attributes = { "data-notification-cursor": "0", "data-notification-at": builtAt };
const handlers = {}; let any = null; let auth = null; const asked = []; const timers = [];
const shown = [];
const socket = { on: (k, f) => { handlers[k] = f; }, onAny: (f) => { any = f; },
                 emit: (kind, data) => asked.push([kind, data]),
                 connected: online === "online" };
const document = {
  body: { getAttribute: (name) => attributes[name] || null }, querySelector: () => null,
  getElementById: () => null, documentElement: { lang: "en" }, visibilityState: "visible",
  addEventListener: (kind, f) => listeners.push([kind, f]),
  dispatchEvent: (e) => shown.push(e.detail.message.batch) };
const window = { io: (options) => { auth = options.auth; return socket; },
                 setTimeout: (f) => { timers.push(f); return timers.length; } };
global.CustomEvent = function (name, init) { this.detail = init.detail; };
new Function("window", "document", fs.readFileSync(script, "utf8"))(window, document);
for (const [kind, message] of JSON.parse(eventsJson)) {
  any(kind, message);
  if (handlers[kind]) { handlers[kind](message); }
}
if (socket.connected) {  // the person comes back to the tab
  listeners.forEach(([kind, f]) => { if (kind === "visibilitychange") { f(); } });
}
let next = null;
auth((value) => { next = value; });
timers.forEach((f) => f());
console.log(JSON.stringify({ shown, next, asked }));
"""


#: When the page read its cursor (data-notification-at); events before it may be on it.
BUILT_AT = "2026-12-07T10:00:00.500000+00:00"
BEFORE, AFTER = "2026-12-07T10:00:00.250000+00:00", "2026-12-07T10:00:01+00:00"


def _shared(key: str, created_at: str = AFTER) -> list[Any]:
    return ["job.posted", {"id": None, "seq": None, "batch": key, "data": {},
                           "kind": "job.posted", "created_at": created_at}]


def _numbered(key: str, seq: int) -> list[Any]:
    return ["job.posted", {"id": 100 + seq, "seq": seq, "batch": key, "data": {},
                           "kind": "job.posted", "created_at": AFTER}]


SCENARIOS: dict[str, list[list[Any]]] = {
    "shared, then its sync": [_shared(A), ["sync", {"matched": [[1, A]], "unknown": []}]],
    "shared, then its numbered replay and a repeat": [
        _shared(A), _numbered(A, 1), _shared(A), _numbered(A, 1)],
    "numbered first, the shared copy after": [_numbered(A, 1), _shared(A)],
    "a gap behind a shared one, filled by sync": [
        _shared(A), _numbered(B, 2), ["sync", {"matched": [[1, A]], "unknown": []}]],
    "a key the server does not know, a lost one replayed": [
        _shared(A), _shared(C), ["sync", {"matched": [[1, A]], "unknown": [C]}],
        _numbered(B, 2)],
    # posted just before the page was built, its live message after: the page has it
    "from before the page, which has it": [
        _shared(A, BEFORE), ["sync", {"matched": [], "unknown": [A]}]],
    "from before the page, which has it (no zone: UTC)": [
        _shared(A, BEFORE[:-6]), ["sync", {"matched": [], "unknown": [A]}]],
    "from before the page, committed after its cursor": [
        _shared(A, BEFORE), ["sync", {"matched": [[1, A]], "unknown": []}]],
    "from before the page, then its numbered replay": [_shared(A, BEFORE), _numbered(A, 1)],
    "from before the page, still waiting for the sync": [_shared(A, BEFORE), _shared(A, BEFORE)],
}


def _run(tmp_path: Path, events: list[list[Any]], online: bool = False) -> dict[str, Any]:
    """What live.js showed, would send on connect, and asked for (see HARNESS)."""
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("node is missing")
        pytest.skip("needs node")
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    ran = subprocess.run([node, str(harness), str(ROOT / "static/js/live.js"),
                          json.dumps(events), BUILT_AT, "online" if online else "offline"],
                         capture_output=True, text=True, timeout=30, check=True)
    page: dict[str, Any] = json.loads(ran.stdout)
    return page


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_live_js_numbers_and_shows_what_cursor_does(name: str, tmp_path: Path) -> None:
    events = SCENARIOS[name]
    page = _run(tmp_path, events)
    expected = Cursor(0, BUILT_AT)
    for kind, message in events:
        expected.receive(kind, message)
    assert page["shown"] == expected.shown_keys
    assert page["next"] == {"cursor": expected.cursor, "have": expected.have()}
    # a sync is asked for exactly while something waits for its number
    asked = [data for kind, data in page["asked"] if kind == "replay"]
    assert bool(asked) == bool(expected.unnumbered or expected.ahead)
    assert all(a == {"cursor": expected.cursor, "have": expected.have()} for a in asked)


def test_a_job_the_page_shows_already_is_not_counted_again() -> None:
    """Posted just before the page loaded, its live message after: the page holds it,
    the sync says the page has it, and it is neither shown nor counted again."""
    page = Cursor(3, BUILT_AT)
    assert not page.receive(*_shared(A, BEFORE))
    page.sync({"matched": [], "unknown": [A]})
    assert page.shown_keys == [] and page.held == {} and page.have() == []
    assert page.receive(*_shared(B, AFTER)) and page.shown_keys == [B]


def test_an_open_page_catches_up_when_shown_again_and_every_few_minutes(
        tmp_path: Path) -> None:
    """A live message lost on the way (a full queue, a stopped process, Redis away for a
    moment) is not waited for until the next event: the page asks for what came after
    its cursor when the tab is shown again, and on a timer (both while connected)."""
    page = _run(tmp_path, [_numbered(A, 1)], online=True)
    asked = [data for kind, data in page["asked"] if kind == "replay"]
    assert asked == [{"cursor": 1, "have": []}] * 2
