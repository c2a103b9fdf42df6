"""Settings read from the environment, with embedded defaults.

Why one function: the same code runs as a single embedded process (SQLite,
in-process scheduler, no Stripe) and scaled out (PostgreSQL, Redis, Stripe);
only these values decide which.  Every variable is listed in the README.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from redis.connection import parse_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"

SUPPORTED_LOCALES = ("en", "es", "fr", "de")
#: the push services of Chrome/Android, Firefox, Edge/Windows and Safari/iOS: the hosts a
#: Web Push subscription may point at unless PUSH_SERVICE_HOSTS says otherwise
DEFAULT_PUSH_HOSTS = ("fcm.googleapis.com", "android.googleapis.com",
                      "push.services.mozilla.com", "notify.windows.com",
                      "push.apple.com")


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _instance_secret_key() -> str:
    """Keep one random key per checkout so sessions survive restarts.

    A fixed key in the source would let anyone forge sessions; a fresh key per
    start would log everybody out.  Production sets SECRET_KEY instead.
    """
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    key_file = INSTANCE_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the Flask config for this process from environment variables."""
    env = os.environ if environ is None else environ
    public_url = (env.get("PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/")
    return {
        "SECRET_KEY": env.get("SECRET_KEY") or _instance_secret_key(),
        "DATABASE_URL": env.get("DATABASE_URL")
        or f"sqlite:///{INSTANCE_DIR / 'marketplace.db'}",
        "REDIS_URL": env.get("REDIS_URL") or None,
        # The Socket.IO channel on that Redis; unset: named after REDIS_URL's database.
        "SOCKETIO_CHANNEL": env.get("SOCKETIO_CHANNEL") or None,
        "SCHEDULER_IN_PROCESS": _flag(env.get("SCHEDULER_IN_PROCESS"), True),
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET") or None,
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        "STRIPE_ACCOUNT_COUNTRY": env.get("STRIPE_ACCOUNT_COUNTRY") or "CA",
        "PUBLIC_URL": public_url,
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES") or 0),
        "INVITE_VALID_DAYS": int(env.get("INVITE_VALID_DAYS") or 7),
        "PASSWORD_RESET_VALID_MINUTES": int(env.get("PASSWORD_RESET_VALID_MINUTES") or 60),
        # Secure cookies whenever the site is served over HTTPS (always in production).
        "SESSION_COOKIE_SECURE": _flag(env.get("SESSION_COOKIE_SECURE"),
                                       public_url.startswith("https://")),
        "REMEMBER_COOKIE_SECURE": _flag(env.get("SESSION_COOKIE_SECURE"),
                                        public_url.startswith("https://")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
        "UPLOAD_DIR": env.get("UPLOAD_DIR") or str(INSTANCE_DIR / "uploads"),
        "LOG_LEVEL": env.get("LOG_LEVEL") or "INFO",
        "RATELIMIT_ENABLED": _flag(env.get("RATELIMIT_ENABLED"), True),
        "RATELIMIT_LOGIN": env.get("RATELIMIT_LOGIN") or "10 per minute; 100 per hour",
        "RATELIMIT_PASSWORD_RESET": env.get("RATELIMIT_PASSWORD_RESET")
        or "5 per minute; 20 per hour",
        "RATELIMIT_POST": env.get("RATELIMIT_POST") or "30 per hour",
        "RATELIMIT_CLAIM": env.get("RATELIMIT_CLAIM") or "60 per minute",
        # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile).
        "PASSWORD_HASH_TIME_COST": int(env.get("PASSWORD_HASH_TIME_COST") or 3),
        "PASSWORD_HASH_MEMORY_KIB": int(env.get("PASSWORD_HASH_MEMORY_KIB") or 65536),
        "INSTANCE_DIR": str(INSTANCE_DIR),
        # Web Push: the VAPID key is generated into instance/ unless given here.
        "PUSH_ENABLED": _flag(env.get("PUSH_ENABLED"), True),
        "VAPID_PRIVATE_KEY": env.get("VAPID_PRIVATE_KEY") or None,
        "VAPID_SUBJECT": env.get("VAPID_SUBJECT") or _vapid_subject(public_url),
        "PUSH_SERVICE_HOSTS": _words(env.get("PUSH_SERVICE_HOSTS")) or list(DEFAULT_PUSH_HOSTS),
        "PUSH_TTL_SECONDS": int(env.get("PUSH_TTL_SECONDS") or 12 * 3600),
        "PUSH_TIMEOUT_SECONDS": float(env.get("PUSH_TIMEOUT_SECONDS") or 10),
        "PUSH_CONCURRENCY": int(env.get("PUSH_CONCURRENCY") or 8),
        "PUSH_LEASE_SECONDS": int(env.get("PUSH_LEASE_SECONDS") or 180),
        # E-mail: SMTP when MAIL_SERVER is set, else .eml files written to MAIL_FOLDER.
        "MAIL_SERVER": env.get("MAIL_SERVER") or None,
        # The port follows the security mode: submission with STARTTLS (587), implicit
        # TLS (465), or a plain relay (25).
        "MAIL_PORT": int(env.get("MAIL_PORT")
                         or (587 if _flag(env.get("MAIL_USE_TLS"), False)
                             else 465 if _flag(env.get("MAIL_USE_SSL"), False) else 25)),
        "MAIL_USE_TLS": _flag(env.get("MAIL_USE_TLS"), False),
        "MAIL_USE_SSL": _flag(env.get("MAIL_USE_SSL"), False),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_FROM": env.get("MAIL_FROM") or "Coopetition marketplace <no-reply@localhost>",
        "MAIL_FOLDER": env.get("MAIL_FOLDER") or str(INSTANCE_DIR / "mail"),
        "MAIL_TIMEOUT_SECONDS": float(env.get("MAIL_TIMEOUT_SECONDS") or 20),
        # how long the mail worker's claim on a row lasts before another worker may take it
        "MAIL_LEASE_SECONDS": int(env.get("MAIL_LEASE_SECONDS") or 300),
        # Places: a Nominatim server for typed street addresses (places/service.py); unset,
        # towns come from the built-in gazetteer only.
        "GEOCODER_URL": env.get("GEOCODER_URL") or None,
        "GEOCODER_TIMEOUT_SECONDS": float(env.get("GEOCODER_TIMEOUT_SECONDS") or 3),
        # Board cards kept rendered per process (jobs/cards.py); 0 turns the cache off.
        "JOB_CARD_CACHE_SIZE": int(env.get("JOB_CARD_CACHE_SIZE") or 4096),
        # A post's notifications are written by a background task after its commit, so
        # posting does not wait for the people it reaches (marketplace/fanout.py); off,
        # the posting request writes them itself.
        "FANOUT_IN_BACKGROUND": _flag(env.get("FANOUT_IN_BACKGROUND"), True),
    }


def _words(value: str | None) -> list[str]:
    return [word.strip().lower() for word in (value or "").replace(",", " ").split()
            if word.strip()]


def _vapid_subject(public_url: str) -> str:
    """Who push services may contact about our pushes (RFC 8292 `sub`): the site
    itself when it is served over HTTPS, else a mailbox on this machine."""
    return public_url if public_url.startswith("https://") else "mailto:admin@localhost"


def socketio_channel(config: Mapping[str, Any]) -> str:
    """The Redis pub/sub channel this deployment's processes talk on.

    Pub/sub ignores Redis's database number: two deployments sharing one Redis
    server, one on `/14` and one on `/15`, would hear each other's events on one
    channel and deliver them to their own users with the same ids.  So the
    channel is named after the database (or set outright with SOCKETIO_CHANNEL,
    for deployments that share one database too); every process of a deployment
    reads the same settings and so meets on the same channel."""
    if config.get("SOCKETIO_CHANNEL"):
        return str(config["SOCKETIO_CHANNEL"])
    url = config.get("REDIS_URL")
    database = (parse_url(str(url)).get("db") if url else None) or 0
    return f"marketplace-db{database}"


class ConfigurationError(RuntimeError):
    """A combination of settings that would fail silently at run time."""


def require_message_queue(config: Mapping[str, Any], process: str) -> None:
    """Refuse to start a process whose events other processes must hear, when there
    is no message queue to carry them: its Socket.IO emits would reach nobody."""
    if not config.get("REDIS_URL"):
        raise ConfigurationError(
            f"{process} publishes live updates to the web instances, which only works "
            "through a message queue: set REDIS_URL (the same Redis for every process), "
            "or run one web instance with the scheduler in-process "
            "(SCHEDULER_IN_PROCESS=true, `python wsgi.py`).")
