"""The API catalog: APIs (an audience) and their scopes, inline; every change through the
catalog services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from clients import services
from clients.models import ApiResource, ApiScope
from portal.console.base import ServiceAdmin, copy_fields, staff_actor


class ApiScopeInline(admin.TabularInline):
    model = ApiScope
    fields = ("name", "description")
    extra = 1


@admin.register(ApiResource)
class ApiResourceAdmin(ServiceAdmin):
    list_display = ("name", "audience", "scope_names", "organization_count", "create_time")
    search_fields = ("name", "audience", "scopes__name")
    list_filter = ("create_time",)
    fields = ("name", "audience", "description", "create_time")
    readonly_fields = ("create_time",)
    inlines = (ApiScopeInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("scopes")
            .annotate(n_orgs=Count("organizations", distinct=True))
        )

    @admin.display(description="scopes")
    def scope_names(self, obj: ApiResource) -> str:
        return " ".join(scope.name for scope in obj.scopes.all()) or "-"

    @admin.display(description="restricted organizations allowed", ordering="n_orgs")
    def organization_count(self, obj: ApiResource) -> int:
        return obj.n_orgs

    def save_model(self, request: HttpRequest, obj: ApiResource, form: Any, change: bool) -> None:
        actor = staff_actor(request)
        data = form.cleaned_data
        if change:
            saved = services.api_resource_update(
                actor=actor,
                api=ApiResource.objects.get(pk=obj.pk),
                name=data["name"],
                description=data["description"],
                audience=data["audience"],
            )
        else:
            saved = services.api_resource_create(
                actor=actor,
                audience=data["audience"],
                name=data["name"],
                description=data["description"],
            )
        copy_fields(obj, saved)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        actor = staff_actor(request)
        formset.save(commit=False)
        for scope in formset.deleted_objects:
            services.api_scope_delete(actor=actor, scope=scope)
        for scope, _changed in formset.changed_objects:
            services.api_scope_update(
                actor=actor,
                scope=ApiScope.objects.get(pk=scope.pk),
                name=scope.name,
                description=scope.description,
            )
        for scope in formset.new_objects:
            services.api_scope_add(
                actor=actor, api=form.instance, name=scope.name, description=scope.description
            )

    def delete_model(self, request: HttpRequest, obj: ApiResource) -> None:
        services.api_resource_delete(actor=staff_actor(request), api=obj)
