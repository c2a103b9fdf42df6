"""The Web Push body is the socket's wire message, cut to fit a push, never more."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from marketplace.realtime.wire import PUSH_PAYLOAD_LIMIT, push_payload, push_topic, wire

TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # RFC 8030 §5.4: URL-safe base64 alphabet
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=3000)


@given(text=texts, data=st.dictionaries(st.text(max_size=20), texts, max_size=5),
       link=st.one_of(st.none(), st.text(max_size=300)))
def test_a_push_always_fits_and_keeps_what_the_phone_needs(
        text: str, data: dict[str, str], link: str | None) -> None:
    message = wire(7, 3, "job.posted", text, link, data, datetime(2026, 6, 1, tzinfo=UTC))
    body = push_payload(message, "New job · Valley", "es")
    assert len(body) <= PUSH_PAYLOAD_LIMIT
    decoded = json.loads(body)
    assert (decoded["id"], decoded["seq"], decoded["kind"]) == (7, 3, "job.posted")
    assert decoded["url"] == decoded["tag"] == (link or "/")
    assert decoded["data"] in (data, {})  # whole, or dropped: never a part
    assert decoded["body"] == decoded["text"]
    assert text.startswith(decoded["body"].removesuffix("…"))


@given(link=st.one_of(st.none(), st.text(max_size=400)))
def test_the_topic_is_one_the_push_service_accepts(link: str | None) -> None:
    assert TOPIC.match(push_topic(link))


def test_notices_about_one_thing_share_tag_and_topic() -> None:
    assert push_topic("/jobs/42") == "jobs-42" and push_topic(None) == "home"
    assert push_topic("/jobs/42") != push_topic("/jobs/43")
