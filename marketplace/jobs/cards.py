"""Job cards as HTML, rendered once and reused: the board and the live client's fragment.

Why: rendering a card is most of what the board costs (issue #14), and a card only
changes when what it shows changes.  A card is a pure function of

- the job's read model as the viewer's audience may see it (`visibility.jobs_for`:
  already cut by the barrier, with the viewer's coarse distance bucket in it),
- the audience itself (kept separately, so two audiences never share a fragment even
  where their read models happen to be equal),
- the language, the time zone and the units it is written in, the application root
  the links start from, and whether it carries the one-tap claim button.

So the cache key holds all of those, and the read model as a digest of its whole
content: that digest *is* the job's version as far as the card is concerned.  Any
change to a field the card may show (title, status, value, trades, the distance
bucket ...) gives a new key, and an old fragment is never served for it; a change the
card cannot show (a new bid, a reminder sent) keeps serving the same, still correct,
fragment.  No column has to be bumped by every writer, so no writer can forget.

The CSRF token in the claim form belongs to one person's session: fragments are
rendered with a per-process placeholder in its place, and each response gets its own
token substituted.  The cache lives on the app (`app.extensions["job_cards"]`) and is
bounded (least recently used out first, `JOB_CARD_CACHE_SIZE` entries, 0 turns it off).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Flask, current_app, render_template, request

# Neither package ships type information (no stubs, no py.typed).
from flask_babel import get_locale, get_timezone
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from marketplace.barrier import ReadModel
from marketplace.clusters.trades import TRADES
from marketplace.i18n import unit_system

CARD_TEMPLATE = "jobs/_card.html"
#: Cards kept per app: a busy cluster's open jobs in a few languages and audiences,
#: about 1 KB each.
DEFAULT_SIZE = 4096
EXTENSION = "job_cards"


@dataclass
class CacheStats:
    """How often a card came from the cache (for the benchmark and tests)."""

    hits: int = 0
    misses: int = 0


class CardCache:
    """A bounded least-recently-used map from card keys to rendered HTML, safe to share
    between the threads (or greenlets) of one process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.stats = CacheStats()
        self._cards: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()
        # Not guessable from outside, never a token: stands where each response's own
        # CSRF token goes.
        self.csrf_slot = f"csrf-slot-{secrets.token_hex(16)}"

    def get(self, key: Hashable) -> str | None:
        with self._lock:
            html = self._cards.get(key)
            if html is None:
                self.stats.misses += 1
                return None
            self._cards.move_to_end(key)
            self.stats.hits += 1
            return html

    def put(self, key: Hashable, html: str) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._cards[key] = html
            self._cards.move_to_end(key)
            while len(self._cards) > self.size:
                self._cards.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._cards.clear()
            self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._cards)


def init_cards(app: Flask) -> CardCache:
    """Give `app` its own card cache (two apps in one process never share cards).

    Off while templates reload from disk (debug), so an edited card shows at once."""
    size = int(app.config.get("JOB_CARD_CACHE_SIZE", DEFAULT_SIZE))
    if app.debug or app.config.get("TEMPLATES_AUTO_RELOAD"):
        size = 0
    cache = CardCache(size)
    app.extensions[EXTENSION] = cache
    return cache


def card_cache(app: Flask | None = None) -> CardCache:
    """The app's card cache, made on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy
    cache = app.extensions.get(EXTENSION)
    return cache if isinstance(cache, CardCache) else init_cards(app)


#: Values whose repr is already stable.
_LEAVES = (str, int, float, bool, type(None), date, datetime)


def _frozen(value: Any) -> Any:
    """A read model's value as something with a stable repr (lists become tuples,
    mappings sorted item tuples)."""
    if isinstance(value, _LEAVES):  # most values: answered before the slower ABC check
        return value
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        items = [_frozen(v) for v in value]
        return tuple(sorted(items, key=repr) if isinstance(value, set | frozenset) else items)
    return value


def content_version(card: ReadModel) -> str:
    """A digest of everything the read model holds: the card's version."""
    return hashlib.blake2b(repr(_frozen(card)).encode(), digest_size=16).hexdigest()


def card_key(card: ReadModel, one_tap_claim: bool) -> tuple[Hashable, ...]:
    """Everything the card's HTML depends on, for the request being served."""
    return (CARD_TEMPLATE, str(get_locale() or "en"), str(get_timezone() or "UTC"),
            unit_system(), request.script_root, one_tap_claim, card.resource,
            str(card.audience), card.get("id"), content_version(card))


def _render(card: ReadModel, one_tap_claim: bool, slot: str) -> str:
    return render_template(CARD_TEMPLATE, job=card, one_tap_claim=one_tap_claim,
                           trades=TRADES, csrf_token=lambda: Markup(slot)).strip()


def render_cards(cards: Iterable[ReadModel], *, one_tap_claim: bool) -> list[Markup]:
    """Each card's HTML for the viewer of this request, from the cache where it can.

    The board and the fragment endpoint both render through here, so a live card and
    a reloaded card are the same markup."""
    cache = card_cache()
    token = str(escape(generate_csrf())) if one_tap_claim else ""
    out = []
    for card in cards:
        key = card_key(card, one_tap_claim)
        html = cache.get(key)
        if html is None:
            html = _render(card, one_tap_claim, cache.csrf_slot)
            cache.put(key, html)
        out.append(Markup(html.replace(cache.csrf_slot, token) if one_tap_claim else html))
    return out


def render_card(card: ReadModel, *, one_tap_claim: bool) -> Markup:
    """One card's HTML (see `render_cards`)."""
    return render_cards([card], one_tap_claim=one_tap_claim)[0]
