"""The coopetition marketplace: `create_app` is the one place extensions are wired."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, g, request
from flask_login import current_user
from flask_socketio import SocketIO
from werkzeug.middleware.proxy_fix import ProxyFix

from marketplace.assets import init_assets
from marketplace.cli import init_cli
from marketplace.clusters.accounts import PASSWORDS, make_hasher
from marketplace.clusters.exit.access import keep_former_members_to_statements
from marketplace.config import PROJECT_ROOT, load_config, socketio_channel
from marketplace.db import make_engine
from marketplace.delivery.runner import init_push
from marketplace.extensions import csrf, limiter, login_manager
from marketplace.i18n import init_i18n
from marketplace.ledger.stripe_gateway import gateway_from_config
from marketplace.ledger.sweeps import GATEWAY
from marketplace.mail.runner import init_mail
from marketplace.realtime.handlers import register_handlers
from marketplace.realtime.limits import PollingBodyLimit
from marketplace.realtime.publisher import install_fanout_runner, install_publisher
from marketplace.realtime.queue import message_queue
from marketplace.scope import EXTENSION as SCOPE
from marketplace.scope import AppScope, lend
from marketplace.web import READ_METHODS, init_web
from marketplace.web import db as request_db

_SOCKET_MESSAGE_LIMIT = 64 * 1024  # notifications are small; refuse floods

_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from environment settings, overridden by `config`."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(load_config())
    app.config.update(config or {})
    if app.config["TRUSTED_PROXIES"]:  # behind nginx: the client's address and scheme
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # WSGI middleware
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    logging.basicConfig(level=app.config["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per sweep is noise
    # What this app's sessions act with (publisher, gateway, hasher): kept on the app and
    # lent to its engine, never set on a module, so two apps in one process never meet.
    scope = app.extensions[SCOPE] = AppScope()
    app.extensions["engine"] = make_engine(app.config["DATABASE_URL"])
    lend(app.extensions["engine"], scope)
    scope.provide(PASSWORDS, make_hasher(app.config["PASSWORD_HASH_TIME_COST"],
                                         app.config["PASSWORD_HASH_MEMORY_KIB"]))

    init_web(app)
    init_i18n(app)
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    # Redis down must not take logins down with it: count in memory meanwhile.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter.init_app(app)
    _init_login(app)
    socketio = SocketIO()  # one per app (extensions.py says why)
    register_handlers(socketio)
    socketio.init_app(
        app,
        message_queue=app.config["REDIS_URL"],
        channel=socketio_channel(app.config),
        # the same queue, its publishing client with a timeout (realtime/queue.py)
        client_manager=message_queue(app.config["REDIS_URL"], socketio_channel(app.config)),
        async_mode=app.config.get("SOCKETIO_ASYNC_MODE", "threading"),
        max_http_buffer_size=_SOCKET_MESSAGE_LIMIT,
        # cors_allowed_origins left unset: Engine.IO then accepts same-origin only.
    )
    app.wsgi_app = PollingBodyLimit(  # type: ignore[method-assign]  # WSGI middleware
        app.wsgi_app, "socket.io", _SOCKET_MESSAGE_LIMIT)
    install_publisher(app, scope)
    if app.config["FANOUT_IN_BACKGROUND"]:
        install_fanout_runner(app, scope)
    init_push(app)  # VAPID keys (generated into instance/ once), the push sender
    init_mail(app)  # SMTP when MAIL_SERVER is set, else .eml files in instance/mail/
    scope.provide(GATEWAY, gateway_from_config(app.config))
    _register_blueprints(app)
    init_cli(app)
    app.before_request(_load_viewer_cluster)
    app.before_request(keep_former_members_to_statements)  # a business that left
    app.after_request(_security_headers)
    init_assets(app)  # /vendor/ (npm files), fingerprinted asset URLs, caching, gzip
    return app


def _init_login(app: Flask) -> None:
    from sqlalchemy import bindparam
    from sqlmodel import col, select

    from marketplace.clusters.agreements import remember_participation, with_participation
    from marketplace.clusters.models import Cluster, Member, User

    # Built once: every signed-in request asks it first, and building the statement
    # (and its cache key) each time cost about a third of the read itself.
    person = (select(User, Cluster, Member)
              .outerjoin(Cluster, col(Cluster.id) == User.cluster_id)
              .outerjoin(Member, col(Member.id) == User.member_id))
    # A request that acts (every gated action -- a booking tap, bid or claim -- is a
    # POST) reads the participation gate's facts with the person; a page asks the gate
    # itself when it shows one, and the rest do not pay for them (35-75 us a read).
    acting_person = with_participation(person, col(User.cluster_id), col(User.member_id))
    by_id = col(User.id) == bindparam("user_id")
    person, acting_person = person.where(by_id), acting_person.where(by_id)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the login page itself explains

    @login_manager.user_loader
    def _load_user(user_id: str) -> User | None:
        # The person's cluster (every page's language, time zone and currency) and
        # business (what nearly every page and action of a member reads first) come in
        # the same read.  `g` holds them: the session's identity map keeps only rows
        # something refers to, and a service's `session.get` then finds them there.
        session = request_db()
        acting = request.method not in READ_METHODS
        row = session.execute(acting_person if acting else person,
                              {"user_id": int(user_id)}).first()
        if row is None or not row[0].active:
            return None
        user, g.viewer_cluster, g.viewer_member, *gate = row
        if acting and g.viewer_member is not None:
            in_force, acceptance_id = gate
            remember_participation(session, user.cluster_id, g.viewer_member, in_force,
                                   acceptance_id)
        return user


def _register_blueprints(app: Flask) -> None:
    from marketplace.api.auth import init_api_auth
    from marketplace.api.views import bp as api_bp
    from marketplace.clusters.auth_views import bp as auth_bp
    from marketplace.clusters.views import bp as clusters_bp
    from marketplace.dashboard.views import bp as dashboard_bp
    from marketplace.delivery.views import bp as push_bp
    from marketplace.disputes.views import bp as disputes_bp
    from marketplace.equipment.views import bp as equipment_bp
    from marketplace.equipment.views import feed_bp as calendar_feed_bp
    from marketplace.health import bp as health_bp
    from marketplace.jobs.views import bp as jobs_bp
    from marketplace.ledger.stripe_views import bp as payouts_bp
    from marketplace.ledger.views import bp as ledger_bp
    from marketplace.mail.views import bp as mail_bp
    from marketplace.places.views import bp as places_bp
    from marketplace.pwa import bp as pwa_bp
    from marketplace.realtime.views import bp as notifications_bp

    for blueprint in (auth_bp, clusters_bp, jobs_bp, notifications_bp, equipment_bp,
                      calendar_feed_bp, ledger_bp, payouts_bp, health_bp, api_bp,
                      dashboard_bp, push_bp, mail_bp, pwa_bp, places_bp, disputes_bp):
        app.register_blueprint(blueprint)
    init_api_auth()


def _load_viewer_cluster() -> None:
    from marketplace.clusters.models import Cluster

    if not current_user.is_authenticated:  # loads the person, and with it its cluster
        g.viewer_cluster = None
    elif g.get("viewer_cluster") is None:  # a person that came another way (API token)
        g.viewer_cluster = request_db().get(Cluster, current_user.cluster_id)


def _security_headers(response: Any) -> Any:
    response.headers.setdefault("Content-Security-Policy", _CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response
