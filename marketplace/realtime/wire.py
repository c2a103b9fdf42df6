"""The one wire shape of a notification, whichever way it reaches a person.

The live Socket.IO emit, the replay on reconnect, the notification centre's
JSON and the Web Push payload are all built here from the stored row, whose
payload the information barrier already cut to what that recipient may see.
No channel assembles its own dict, so no channel can show more than another.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

#: Web Push carries at most 4 096 encrypted bytes (RFC 8291); keep well inside it.
PUSH_PAYLOAD_LIMIT = 3000


def wire(notification_id: int | None, seq: int | None, kind: str, text: str,
         link: str | None, data: dict[str, Any], created_at: datetime | None) -> dict[str, Any]:
    """A notification as every client receives it: `id` to drop duplicates, `seq` to
    resume after (the delivery cursor), the text already in the reader's language."""
    return {
        "id": notification_id,
        "seq": seq,
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
