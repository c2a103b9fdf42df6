"""Invitations: signed, expiring, single-use links that bring people in.

The link carries only a signed invite id and a random nonce; the row decides
expiry and use.  Spending the invite is a conditional UPDATE (`used_at IS
NULL`), so two people opening the same link at once cannot both sign up.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import update
from sqlmodel import Session, col, select

from marketplace.clusters.accounts import hash_password, hasher_of, normalise_email
from marketplace.clusters.models import Cluster, Invite, InviteKind, Member, Role, User
from marketplace.clusters.service import (
    can_manage_member,
    get_member,
    require_coordinator,
    validate_new_account,
)
from marketplace.errors import N_, Conflict, Forbidden, Gone, ValidationError
from marketplace.mail.outbox import MailKind, queue_mail
from marketplace.persisted import id_of

_SALT = "invite"


def _validate_email(email: str) -> str:
    clean = normalise_email(email)
    if "@" not in clean or "." not in clean.split("@")[-1] or len(clean) > 254:
        raise ValidationError("invalid_email", N_("Enter a valid e-mail address."),
                              fields={"email": N_("Enter a valid e-mail address.")})
    return clean


def create_member_invite(
    session: Session, actor: User, email: str, business_name: str, now: datetime,
    valid_days: int,
) -> Invite:
    """A coordinator invites a new business; whoever signs up becomes its owner."""
    require_coordinator(actor)
    clean_email = _validate_email(email)
    if not 0 < len(business_name.strip()) <= 120:
        raise ValidationError("invalid_business_name", N_("Enter the business name."),
                              fields={"business_name": N_("Enter the business name.")})
    return _store(session, actor, now, valid_days, kind=InviteKind.MEMBER, role=Role.OWNER,
                  email=clean_email, business_name=business_name.strip())


def create_user_invite(
    session: Session, actor: User, member_id: int, email: str, role: str, now: datetime,
    valid_days: int,
) -> Invite:
    """An owner (or the coordinator) invites a person into a member business."""
    member = get_member(session, actor, member_id)
    if not can_manage_member(actor, member):
        raise Forbidden("not_member_owner",
                        N_("Only an owner of this business or the coordinator can invite people."))
    if role not in (Role.OWNER, Role.CREW):
        raise ValidationError("invalid_role", N_("Choose owner or crew."),
                              fields={"role": N_("Choose owner or crew.")})
    clean_email = _validate_email(email)
    return _store(session, actor, now, valid_days, kind=InviteKind.USER, role=role,
                  email=clean_email, member_id=member.id)


def _store(session: Session, actor: User, now: datetime, days: int, *, kind: InviteKind,
           role: str, email: str, member_id: int | None = None,
           business_name: str | None = None) -> Invite:
    """Keep the invite and, in the same commit, the mail that carries its link (in the
    cluster's language: the invited person has no language of their own yet)."""
    invite = Invite(cluster_id=actor.cluster_id, kind=kind, role=role, email=email,
                    member_id=member_id, business_name=business_name,
                    nonce=secrets.token_urlsafe(24), created_by_id=id_of(actor),
                    created_at=now, expires_at=now + timedelta(days=days))
    session.add(invite)
    session.flush()
    cluster = session.get(Cluster, invite.cluster_id)
    queue_mail(session, MailKind.INVITE, invite.email,
               cluster.default_locale if cluster else "en", now,
               params={"invite_id": invite.id})
    session.commit()
    return invite


def invite_token(secret_key: str, invite: Invite) -> str:
    """The string that goes into the invite link."""
    return URLSafeSerializer(secret_key, salt=_SALT).dumps({"i": invite.id, "n": invite.nonce})


def pending_invites(session: Session, viewer: User) -> list[Invite]:
    """Invites of the viewer's cluster not yet used, newest first."""
    return list(session.exec(
        select(Invite)
        .where(Invite.cluster_id == viewer.cluster_id, col(Invite.used_at).is_(None))
        .order_by(col(Invite.created_at).desc())
    ))


def open_invite(session: Session, secret_key: str, token: str, now: datetime) -> Invite:
    """The invite behind a link, refused clearly if tampered, used or expired."""
    try:
        data = URLSafeSerializer(secret_key, salt=_SALT).loads(token)
    except BadSignature:
        data = None
    invite = session.get(Invite, data.get("i")) if isinstance(data, dict) else None
    if invite is None or not secrets.compare_digest(invite.nonce, str(data.get("n", ""))):
        raise Gone("invite_invalid",
                   N_("This invite link is not valid. Check that you copied all of it, "
                      "or ask your coordinator for a new one."), status=404)
    if invite.used_at is not None:
        raise Gone("invite_used",
                   N_("This invite link has already been used. Log in, or ask your "
                      "coordinator for a new invite."))
    if invite.expires_at <= now:
        raise Gone("invite_expired",
                   N_("This invite link has expired. Ask your coordinator for a new one."))
    return invite


def accept_invite(
    session: Session, secret_key: str, token: str, name: str, password: str, now: datetime
) -> User:
    """Sign up through an invite: creates the person (and business) exactly once."""
    invite = open_invite(session, secret_key, token, now)
    validate_new_account(session, name, invite.email, password)
    spent = session.exec(
        update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        session.rollback()
        raise Conflict("invite_used",
                       N_("This invite link has already been used. Log in, or ask your "
                          "coordinator for a new invite."))
    member_id = invite.member_id
    if invite.kind == InviteKind.MEMBER:
        member = Member(cluster_id=invite.cluster_id, name=invite.business_name or name,
                        created_at=now)
        session.add(member)
        session.flush()
        member_id = member.id
    user = User(
        email=invite.email, name=name.strip(),
        password_hash=hash_password(password, hasher_of(session)),
        cluster_id=invite.cluster_id, member_id=member_id, role=invite.role, created_at=now,
    )
    session.add(user)
    session.flush()
    session.execute(update(Invite).where(col(Invite.id) == invite.id).values(used_by_id=user.id))
    session.commit()
    return user
