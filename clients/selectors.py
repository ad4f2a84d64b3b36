"""Reads, with tenancy built in: every lookup is scoped to its parent, or it is a 404."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from clients.models import (
    ApiClient,
    AuditEvent,
    ClientKey,
    ClientSecret,
    Invitation,
    Membership,
    Organization,
    TrustPolicy,
)


def organization_get(organization_id: str) -> Organization:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        raise Http404("organization not found")
    return organization


# How many active secrets the outer query's client holds.
_ACTIVE_SECRET_COUNT = Subquery(
    ClientSecret.objects.filter(client=OuterRef("pk"), status=ClientSecret.Status.ACTIVE)
    .order_by()
    .values("client")
    .annotate(n=Count("*"))
    .values("n")[:1],
    output_field=IntegerField(),
)


def client_list(organization: Organization, search: str = "") -> QuerySet[ApiClient]:
    """The organization's clients with their secrets in one extra query, oldest first."""
    clients = ApiClient.objects.filter(organization=organization)
    if search:
        clients = clients.filter(Q(name__icontains=search) | Q(id__icontains=search))
    return (
        clients.prefetch_related(
            Prefetch("secrets", queryset=ClientSecret.objects.order_by("create_time", "id")),
            Prefetch("keys", queryset=ClientKey.objects.order_by("create_time", "id")),
        )
        # A correlated subquery rather than Count() over a join: the join grouped every secret
        # of every client before the page was cut (a scan of all secrets, 45 ms at 100,000
        # clients), while the subquery reads the secrets of the page's clients by index, and
        # count() leaves it out.
        .annotate(active_secret_count=Coalesce(_ACTIVE_SECRET_COUNT, 0))
        .order_by("create_time", "id")
    )


def client_get(organization: Organization, client_id: str) -> ApiClient:
    """A client of this organization, or 404 (also for another organization's client)."""
    client = (
        ApiClient.objects.filter(organization=organization, pk=client_id)
        .prefetch_related(
            Prefetch("secrets", queryset=ClientSecret.objects.order_by("create_time", "id")),
            Prefetch("keys", queryset=ClientKey.objects.order_by("create_time", "id")),
        )
        .first()
    )
    if client is None:
        raise Http404("client not found")
    return client


def secret_get(client: ApiClient, secret_id: str) -> ClientSecret:
    secret = (
        ClientSecret.objects.filter(client=client, pk=secret_id).select_related("client").first()
    )
    if secret is None:
        raise Http404("secret not found")
    return secret


def membership_get(user: object, organization_id: str) -> Membership:
    """The user's membership in this organization, or 404: the portal's tenancy check."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("organization not found")
    membership = (
        Membership.objects.select_related("organization", "user")
        .filter(user=user, organization_id=organization_id)
        .first()
    )
    if membership is None:
        raise Http404("organization not found")
    return membership


def memberships_of(user: object) -> QuerySet[Membership]:
    """The organizations a user belongs to, for the switcher."""
    return (
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__display_name", "organization_id")
    )


def member_get(organization: Organization, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("user")
        .filter(organization=organization, pk=membership_id)
        .first()
    )
    if membership is None:
        raise Http404("member not found")
    return membership


def invitation_get(organization: Organization, invitation_id: int) -> Invitation:
    """An open invitation of this organization, or 404."""
    invitation = organization.invitations.filter(
        pk=invitation_id, accepted_time__isnull=True
    ).first()
    if invitation is None:
        raise Http404("invitation not found")
    return invitation


def recently_revoked_secrets(client: ApiClient, days: int = 7) -> list[AuditEvent]:
    """The revocations of this client's secrets in the last ``days`` days, newest first: a
    revoked secret is deleted at once (the token endpoint must refuse it), but its owner should
    still see for a while that it was revoked, when, and by whom, rather than see it vanish."""
    since = timezone.now() - timedelta(days=days)
    return list(
        AuditEvent.objects.filter(client_id=client.pk, action="secret.delete", time__gte=since)
        .exclude(organization_id="")
        .order_by("-time", "-id")[:10]
    )


def audit_list(
    organization: Organization,
    client_id: str = "",
    *,
    actor_id: str = "",
    kind: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The organization's events, newest first: of one client, by one person (a user's id),
    of one kind (``client``, ``secret``… the part of the action before its dot), from ``since``
    (inclusive) to ``until`` (exclusive)."""
    events = AuditEvent.objects.filter(organization_id=organization.id)
    if client_id:
        events = events.filter(client_id=client_id)
    if actor_id:
        events = events.filter(actor_type="user", actor_id=actor_id)
    if kind:
        events = events.filter(action__startswith=f"{kind}.")
    if since is not None:
        events = events.filter(time__gte=since)
    if until is not None:
        events = events.filter(time__lt=until)
    return events.order_by("-time", "-id")


def client_key_get(client: ApiClient, key_id: str) -> ClientKey:
    """A public key of this client, or 404."""
    key = ClientKey.objects.filter(client=client, pk=key_id).select_related("client").first()
    if key is None:
        raise Http404("key not found")
    return key


def trust_policies_of(client: ApiClient) -> list[TrustPolicy]:
    """The client's trust policies, oldest first (the client was found through a selector)."""
    return list(TrustPolicy.objects.filter(client=client).order_by("create_time", "id"))


def trust_policy_get(client: ApiClient, policy_id: str) -> TrustPolicy:
    """A trust policy of this client, or 404 (also another client's policy)."""
    policy = (
        TrustPolicy.objects.filter(client=client, pk=policy_id).select_related("client").first()
    )
    if policy is None:
        raise Http404("trust policy not found")
    return policy


def owner_and_admin_emails(organization: Organization) -> list[str]:
    """The addresses of an organization's owners and admins (notifications about it)."""
    return sorted(
        {
            email
            for email in Membership.objects.filter(
                organization=organization,
                role__in=[Membership.Role.OWNER, Membership.Role.ADMIN],
                user__is_active=True,
            ).values_list("user__email", flat=True)
            if email
        }
    )
