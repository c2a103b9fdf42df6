"""Rate limits on the actions worth abusing: logging in, reset mails, posting, claiming,
booking.  Counters live in Redis when REDIS_URL is set (shared by every instance),
in memory otherwise; a refusal is the app's translated 429 page or JSON error.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from flask_limiter.util import get_remote_address
from flask_login import current_user

from marketplace.extensions import limiter


def user_or_address() -> str:
    """Logged-in people are counted per account, everyone else per address."""
    if current_user.is_authenticated:
        return f"user:{current_user.get_id()}"
    return f"ip:{get_remote_address()}"


def _setting(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


#: Per address: guessing passwords or flooding reset mails.
login_limit = limiter.limit(_setting("RATELIMIT_LOGIN"), methods=["POST"])
reset_limit = limiter.limit(_setting("RATELIMIT_PASSWORD_RESET"), methods=["POST"])
#: Per person: a runaway script posting jobs, claiming or booking in a loop.
post_limit = limiter.limit(_setting("RATELIMIT_POST"), key_func=user_or_address,
                           methods=["POST"])
claim_limit = limiter.limit(_setting("RATELIMIT_CLAIM"), key_func=user_or_address,
                            methods=["POST"])
