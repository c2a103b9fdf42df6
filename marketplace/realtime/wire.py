"""The one wire shape of a notification, whichever way it reaches a person.

The live Socket.IO emit, the replay on reconnect, the notification centre's
JSON and the Web Push payload are all built here from the stored row, whose
payload the information barrier already cut to what that recipient may see.
No channel assembles its own dict, so no channel can show more than another.

One event for many people is one live message per language (realtime/publisher.py),
so a live message can carry nothing that differs per person: not the person's row id,
not their sequence number, and never who else got it.  What lets a phone match such
a message with its own stored row is the `batch` key: a digest of what every
recipient of the event sees alike (kind, link, data, time), present in every shape,
so the replay of the row carries the very key the live message had.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

#: Web Push carries at most 4 096 encrypted bytes (RFC 8291); keep well inside it.
PUSH_PAYLOAD_LIMIT = 3000


def batch_key(kind: str, link: str | None, data: dict[str, Any],
              created_at: datetime | None) -> str:
    """The key of one event as its recipients see it, the same in the live message and
    in each recipient's replayed row (16 hex digits).

    Built only from what every recipient of the event is shown alike, and not from the
    text: a replay renders the text in the language the person reads now, which may
    not be the one the live message was rendered in.  Two events of the same kind,
    link, data and instant are one event to a reader, so sharing a key costs nothing."""
    common = [kind, link, data, created_at.isoformat() if created_at else None]
    text = json.dumps(common, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def wire(notification_id: int | None, seq: int | None, kind: str, text: str,
         link: str | None, data: dict[str, Any], created_at: datetime | None) -> dict[str, Any]:
    """A notification as every client receives it: `id` to drop duplicates, `seq` to
    resume after (the delivery cursor), the text already in the reader's language,
    `batch` to recognise the event whichever way it came.  `id` and `seq` are None in
    a live message shared by several people (see `batch_key`)."""
    return {
        "id": notification_id,
        "seq": seq,
        "batch": batch_key(kind, link, data, created_at),
        "kind": kind,
        "text": text,
        "link": link,
        "data": data,
        "created_at": created_at.isoformat() if created_at else None,
    }


def push_tag(link: str | None) -> str:
    """Notices about the same thing share a tag, so a phone replaces the job's earlier
    notice ("new job") by the later one ("taken") instead of stacking them."""
    return link or "/"


def push_topic(link: str | None) -> str:
    """The same idea for the push service (RFC 8030 Topic: at most 32 URL-safe
    characters): a notice still waiting there is replaced by a newer one."""
    slug = "".join(c if c.isascii() and c.isalnum() else "-"
                   for c in push_tag(link).strip("/"))[:32]
    return slug or "home"


def push_payload(message: dict[str, Any], title: str, lang: str) -> bytes:
    """The Web Push body: the wire message plus what the phone's notification shows.

    `data` is dropped first when the whole would not fit a push message, then the
    text is shortened: the phone needs the words and where a tap leads, and the page
    it opens shows the rest (through the same barrier)."""
    body = {**message, "title": title, "body": message["text"], "url": message["link"] or "/",
            "tag": push_tag(message["link"]), "lang": lang}
    encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if len(encoded) > PUSH_PAYLOAD_LIMIT:
        body["data"] = {}
        encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    while len(encoded) > PUSH_PAYLOAD_LIMIT:
        body["text"] = body["body"] = body["body"][: max(len(body["body"]) // 2, 1)] + "…"
        encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return encoded
