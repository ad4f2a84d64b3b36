"""Portal accounts, invitations and memberships."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from clients.models import Invitation, Membership, Organization, email_canonical
from clients.services._common import check_model, delete_once, form_claim
from clients.services.audit import Actor, audit_invitation, audit_member
from clients.services.organizations import organization_create
from clients.services.outbox import enqueue


def _check_role(role: str) -> None:
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"role must be one of {Membership.Role.values}"]})


def _create_user(*, email: str, password: str) -> Any:
    """A portal user: the email is the username. The form validated the password already."""
    User = get_user_model()
    email = email_canonical(email)
    existing = User.objects.select_for_update().filter(username__iexact=email).first()
    if existing is not None and _pending(existing):
        # A sign-up never confirmed: the invitation link proves the mailbox just as well.
        existing.set_password(password)
        existing.is_active = True
        existing.save(update_fields=["password", "is_active"])
        return existing
    if existing is not None:
        raise ValidationError({"email": ["an account with this email exists; log in instead"]})
    try:
        with transaction.atomic():
            return User.objects.create_user(username=email, email=email, password=password)
    except IntegrityError as exc:
        raise ValidationError({"email": ["an account with this email exists"]}) from exc


def _membership_add(
    *, actor: Actor, user: Any, organization: Organization, role: str
) -> Membership:
    if Membership.objects.filter(user=user, organization=organization).exists():
        raise ValidationError("you are already a member of this organization", code="member")
    membership = Membership.objects.create(user=user, organization=organization, role=role)
    audit_member(actor, "member.add", membership, details={"role": role})
    return membership


def _pending(user: Any) -> bool:
    """An account that signed up and has not confirmed its address yet."""
    return not user.is_active and user.last_login is None


@transaction.atomic
def account_signup(
    *, email: str, password: str, organization_name: str, ip: str | None = None
) -> None:
    """Self sign-up, step one: an account waiting for its address to be confirmed.

    The answer is the same whether or not the address has an account: the worker sends either
    the confirmation link or a "you already have an account" mail (kind ``account.signup``).
    The password is hashed either way (the hash is the slow part). A second sign-up of a
    pending address replaces its password, so whoever can read the mailbox decides.
    """
    User = get_user_model()
    email = email_canonical(email)
    hashed = make_password(password)
    user = User.objects.filter(username__iexact=email).first()
    if user is None:
        try:
            with transaction.atomic():
                User.objects.create(username=email, email=email, password=hashed, is_active=False)
        except IntegrityError:
            pass  # signed up twice at once: the other request's account waits for the link
    elif _pending(user):
        user.password = hashed
        user.save(update_fields=["password"])
    enqueue("account.signup", {"email": email, "organization_name": organization_name})


@transaction.atomic
def account_signup_confirm(
    *, user: Any, organization_name: str, ip: str | None = None
) -> tuple[Any, Organization, Membership]:
    """Self sign-up, step two (the link was followed): the account opens, with a new
    organization it owns."""
    locked = get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    if locked is None or not _pending(locked):
        raise ValidationError("this link was already used", code="used")
    locked.is_active = True
    locked.save(update_fields=["is_active"])
    actor = Actor.for_user(locked, ip=ip)
    organization = organization_create(actor=actor, display_name=organization_name)
    membership = _membership_add(
        actor=actor, user=locked, organization=organization, role=Membership.Role.OWNER
    )
    return locked, organization, membership


@transaction.atomic
def password_reset_request(*, email: str) -> None:
    """Ask for a reset link. The same work whether or not an account uses ``email``: the
    worker (kind ``account.password_reset``) decides whether there is anyone to write to."""
    enqueue("account.password_reset", {"email": email_canonical(email)})


@transaction.atomic
def invitation_create(
    *,
    actor: Actor,
    organization: Organization,
    email: str,
    role: str,
    invited_by: Any,
    form_token: str = "",
) -> Invitation:
    """Invite someone by email; the worker sends the link (kind ``invitation.email``)."""
    form_claim(form_token, kind="invitation.create", organization_id=organization.pk)
    _check_role(role)
    email = email_canonical(email)
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError({"email": ["this person is already a member"]})
    # Lock the organization: two invitations of one address at once cannot both pass the check.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    if organization.invitations.filter(email__iexact=email, accepted_time__isnull=True).exists():
        raise ValidationError(
            {"email": [f"{email} is invited already; resend or cancel that invitation below"]}
        )
    invitation = Invitation(
        organization=organization, email=email, role=role, invited_by=invited_by
    )
    check_model(invitation)
    invitation.save()
    audit_invitation(actor, "invitation.create", invitation, details={"email": email, "role": role})
    enqueue("invitation.email", {"invitation_id": invitation.pk})
    return invitation


def _invitation_open(invitation: Invitation) -> Invitation:
    locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if locked is None or locked.accepted_time is not None:
        raise ValidationError("this invitation was already used or cancelled", code="used")
    return locked


@transaction.atomic
def invitation_cancel(*, actor: Actor, invitation: Invitation) -> bool:
    """Withdraw an open invitation: its link stops working. False when it was gone already."""
    invitation = _invitation_open(invitation)
    if not delete_once(invitation):
        return False
    audit_invitation(actor, "invitation.cancel", invitation, details={"email": invitation.email})
    return True


@transaction.atomic
def invitation_resend(*, actor: Actor, invitation: Invitation) -> Invitation:
    """Mail an open invitation again, with a fresh link (the worker signs it when it sends)."""
    invitation = _invitation_open(invitation)
    audit_invitation(actor, "invitation.resend", invitation, details={"email": invitation.email})
    enqueue("invitation.email", {"invitation_id": invitation.pk})
    return invitation


def _invitation_use(invitation: Invitation) -> Invitation:
    # Lock and re-read: two tabs accepting the same link must not both succeed.
    locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if locked is None or locked.accepted_time is not None:
        raise ValidationError("this invitation was already used", code="used")
    locked.accepted_time = timezone.now()
    locked.save(update_fields=["accepted_time"])
    return locked


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: Any, ip: str | None = None) -> Membership:
    """An existing user joins with the invited role. The invitation was sent to their email."""
    if email_canonical(user.email or "") != email_canonical(invitation.email):
        raise ValidationError(
            f"this invitation was sent to {invitation.email}; log in with that account",
            code="email",
        )
    invitation = _invitation_use(invitation)
    return _membership_add(
        actor=Actor.for_user(user, ip=ip),
        user=user,
        organization=invitation.organization,
        role=invitation.role,
    )


@transaction.atomic
def invitation_accept_with_signup(
    *, invitation: Invitation, password: str, ip: str | None = None
) -> tuple[Any, Membership]:
    """A new user sets a password and joins: the account's email is the invited one."""
    user = _create_user(email=invitation.email, password=password)
    return user, invitation_accept(invitation=invitation, user=user, ip=ip)


def _lock_owners(organization_id: str) -> list[int]:
    return list(
        Membership.objects.select_for_update()
        .filter(organization_id=organization_id, role=Membership.Role.OWNER)
        .values_list("pk", flat=True)
    )


def _refuse_last_owner(owners: list[int], membership: Membership) -> None:
    if owners == [membership.pk]:
        raise ValidationError(
            "an organization needs an owner; make someone else owner first", code="last_owner"
        )


@transaction.atomic
def member_role_change(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change a member's role; the last owner cannot be demoted."""
    _check_role(role)
    owners = _lock_owners(membership.organization_id)
    membership.refresh_from_db()
    demotes_owner = membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER
    if demotes_owner:
        _refuse_last_owner(owners, membership)
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_member(actor, "member.role_change", membership, details={"from": old, "to": role})
    return membership


@transaction.atomic
def member_remove(*, actor: Actor, membership: Membership) -> None:
    """Remove a member; the last owner cannot be removed."""
    _refuse_last_owner(_lock_owners(membership.organization_id), membership)
    if delete_once(membership):
        audit_member(actor, "member.remove", membership, details={"role": membership.role})


@transaction.atomic
def member_add(*, actor: Actor, user: Any, organization: Organization, role: str) -> Membership:
    """Staff add an existing user to an organization with a role."""
    _check_role(role)
    if Membership.objects.filter(user=user, organization=organization).exists():
        raise ValidationError(
            f"{user.get_username()} is already a member of this organization", code="member"
        )
    return _membership_add(actor=actor, user=user, organization=organization, role=role)
