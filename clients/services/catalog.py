"""The API catalog (APIs and their scopes) and which APIs an organization may grant."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from clients.models import ApiResource, ApiScope, Organization
from clients.services._common import check_model, delete_once
from clients.services.audit import Actor, audit_api, audit_organization


def catalog_for(organization: Organization) -> list[ApiResource]:
    """The APIs this organization may grant, with their scopes prefetched."""
    apis = organization.allowed_apis.all() if organization.restrict_apis else ApiResource.objects
    return list(apis.prefetch_related("scopes").order_by("name", "id"))


def _scopes_by_audience(organization: Organization) -> dict[str, set[str]]:
    return {
        api.audience: {scope.name for scope in api.scopes.all()}
        for api in catalog_for(organization)
    }


def catalog_check(*, organization: Organization, audience: list[str], scopes: list[str]) -> None:
    """Raise ValidationError unless every audience and scope comes from the organization's catalog.

    The portal calls this before ``client_create``/``client_update``, so a customer can never
    grant itself more than the provider allowed; the management API (the provider itself) does
    not, and stays free-form.
    """
    allowed = _scopes_by_audience(organization)
    errors: dict[str, list[str]] = {}
    for aud in audience:
        if aud not in allowed:
            errors.setdefault("audience", []).append(f"{aud!r} is not an API you may use")
    offered = set().union(*(allowed[aud] for aud in audience if aud in allowed))
    for scope in scopes:
        if scope not in offered:
            errors.setdefault("scopes", []).append(f"{scope!r} is not offered by the selected APIs")
    if errors:
        raise ValidationError(errors)


def provider_grants(
    *, organization: Organization, audience: list[str], scopes: list[str]
) -> tuple[list[str], list[str]]:
    """The audiences and scopes of a client that lie outside the organization's catalog.

    The provider may grant these through the management API. The portal cannot offer them, so
    it keeps them untouched when a customer saves the client, rather than silently dropping
    them.
    """
    allowed = _scopes_by_audience(organization)
    offered = set().union(*allowed.values()) if allowed else set()
    return (
        [aud for aud in audience if aud not in allowed],
        [scope for scope in scopes if scope not in offered],
    )


@transaction.atomic
def organization_restrict_apis(
    *, actor: Actor, organization: Organization, apis: list[ApiResource] | None
) -> Organization:
    """Restrict an organization to ``apis`` (possibly none), or lift the restriction (None)."""
    organization.restrict_apis = apis is not None
    organization.save(update_fields=["restrict_apis", "update_time"])
    organization.allowed_apis.set(apis or [])
    audit_organization(
        actor,
        "organization.restrict_apis",
        organization,
        details={"apis": None if apis is None else [api.audience for api in apis]},
    )
    return organization


@transaction.atomic
def api_resource_create(
    *,
    actor: Actor,
    audience: str,
    name: str,
    description: str = "",
    scopes: list[tuple[str, str]] | None = None,
) -> ApiResource:
    """Add an API to the catalog with its scopes ``[(name, description), ...]``."""
    api = ApiResource(audience=audience, name=name, description=description)
    check_model(api)
    if ApiResource.objects.filter(audience=audience).exists():
        raise ValidationError({"audience": ["an API with this audience exists"]})
    api.save()
    for scope_name, scope_description in scopes or []:
        scope = ApiScope(api=api, name=scope_name, description=scope_description)
        check_model(scope)
        scope.save()
    audit_api(
        actor,
        "api.create",
        api,
        details={"audience": audience, "scopes": [name for name, _ in scopes or []]},
    )
    return api


@transaction.atomic
def api_resource_update(
    *,
    actor: Actor,
    api: ApiResource,
    name: str | None = None,
    description: str | None = None,
    audience: str | None = None,
) -> ApiResource:
    """Rename or redescribe an API, or change its audience (clients keep their own copies)."""
    changed: dict[str, str] = {}
    for field, value in (("name", name), ("description", description), ("audience", audience)):
        if value is not None and getattr(api, field) != value:
            setattr(api, field, value)
            changed[field] = value
    check_model(api)
    if ApiResource.objects.filter(audience=api.audience).exclude(pk=api.pk).exists():
        raise ValidationError({"audience": ["an API with this audience exists"]})
    api.save()
    audit_api(actor, "api.update", api, details=changed)
    return api


@transaction.atomic
def api_resource_delete(*, actor: Actor, api: ApiResource) -> None:
    """Remove an API from the catalog (with its scopes). Existing clients keep their grants."""
    if delete_once(api):
        audit_api(actor, "api.delete", api, details={"audience": api.audience})


@transaction.atomic
def api_scope_add(*, actor: Actor, api: ApiResource, name: str, description: str = "") -> ApiScope:
    """Offer one more scope of an API in the catalog."""
    scope = ApiScope(api=api, name=name, description=description)
    check_model(scope)
    if ApiScope.objects.filter(api=api, name=name).exists():
        raise ValidationError({"name": [f"{api.name} already offers {name!r}"]})
    scope.save()
    audit_api(actor, "api.scope_add", api, details={"audience": api.audience, "scope": name})
    return scope


@transaction.atomic
def api_scope_update(
    *, actor: Actor, scope: ApiScope, name: str | None = None, description: str | None = None
) -> ApiScope:
    """Rename or redescribe a scope. Clients keep the scope names they were granted."""
    old = scope.name
    if name is not None:
        scope.name = name
    if description is not None:
        scope.description = description
    check_model(scope)
    if ApiScope.objects.filter(api_id=scope.api_id, name=scope.name).exclude(pk=scope.pk).exists():
        raise ValidationError({"name": [f"this API already offers {scope.name!r}"]})
    scope.save()
    audit_api(actor, "api.scope_update", scope, details={"scope": scope.name, "was": old})
    return scope


@transaction.atomic
def api_scope_delete(*, actor: Actor, scope: ApiScope) -> None:
    """Stop offering a scope. Clients that were granted it keep it."""
    if delete_once(scope):
        audit_api(actor, "api.scope_delete", scope, details={"scope": scope.name})
