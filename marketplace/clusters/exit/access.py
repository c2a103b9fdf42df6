"""What the people of a business that left the cluster may still reach.

Once its exit date came, a former member's people may sign in, manage their own
account, read and download the business's statements (pages, print, CSV and the
API's statements), and see what its exit did -- nothing else of the cluster: not
the jobs board, the machines, the other members or the notifications.  One gate,
run before every request (marketplace/__init__.py registers it), so a page added
later is closed to them unless it is named here.
"""

from __future__ import annotations

from flask import g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace.clusters.exit.service import is_former_member
from marketplace.clusters.models import Member
from marketplace.db import utcnow
from marketplace.errors import N_, Forbidden
from marketplace.web import db

#: Endpoints anyone may reach whatever their business did (signing in and out, the
#: app's files, the language switch, mail unsubscribe links).
_ANYONE = frozenset({"static", "vendor", "health.healthz", "mail.unsubscribe"})
_ANYONE_PREFIXES = ("auth.", "pwa.")
#: What a former member's people keep: their own account and the business's
#: statements and exit outcome (reading only, except the account itself).
_STATEMENTS = frozenset({
    "ledger.index", "ledger.month_page", "ledger.statement_print", "ledger.statement_csv",
    "clusters.exit.outcome", "api.list_months", "api.statement", "api.me",
    "api.my_exit", "api.openapi_document"})
_ACCOUNT = frozenset({"clusters.account", "clusters.create_api_token",
                      "clusters.revoke_api_token", "api.list_tokens", "api.revoke_token"})
_READS = frozenset({"GET", "HEAD"})

FORMER_MEMBER = N_("Your business has left the cluster. You can still read and download its "
                   "statements under Money, and see what its exit did.")


def former_member_may(endpoint: str, method: str) -> bool:
    """Whether a former member's person may call `endpoint` with `method`."""
    return endpoint in _ACCOUNT or (endpoint in _STATEMENTS and method in _READS)


def keep_former_members_to_statements() -> ResponseReturnValue | None:
    """Before every request: a former member's people reach only their statements, exit
    outcome and account; its home page leads to the exit's outcome."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in _ANYONE or endpoint.startswith(_ANYONE_PREFIXES):
        return None
    if not current_user.is_authenticated or current_user.member_id is None:
        return None
    if not viewer_is_former_member():
        return None
    if former_member_may(endpoint, request.method):
        return None
    if endpoint == "clusters.home" and request.method in _READS:
        return redirect(url_for("clusters.exit.outcome"))
    raise Forbidden("former_member", FORMER_MEMBER)


def viewer_is_former_member() -> bool:
    """Whether the signed-in person's business has left (templates trim the menu)."""
    if not current_user.is_authenticated or current_user.member_id is None:
        return False
    member = g.get("viewer_member")
    if member is None or member.id != current_user.member_id:
        member = db().get(Member, current_user.member_id)
    return is_former_member(member, utcnow())
