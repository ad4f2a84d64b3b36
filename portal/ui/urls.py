"""The portal's pages (namespace ``portal``), included at ``/`` after the OAuth endpoints."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from portal.ui import views

app_name = "portal"

org = "orgs/<str:org_id>/"
client = org + "clients/<str:client_id>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("login", views.LoginView.as_view(), name="login"),
    path("logout", views.logout, name="logout"),
    path("signup", views.signup, name="signup"),
    path("signup/sent", views.signup_sent, name="signup-sent"),
    path("signup/confirm/<str:token>", views.signup_confirm, name="signup-confirm"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path(
        "password-reset/sent",
        auth_views.PasswordResetDoneView.as_view(template_name="portal/password_reset_done.html"),
        name="password-reset-done",
    ),
    path(
        "password-reset/<uidb64>/<token>",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="portal/password_reset_confirm.html",
            success_url=reverse_lazy("portal:password-reset-complete"),
        ),
        name="password-reset-confirm",
    ),
    path(
        "password-reset/done",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="portal/password_reset_complete.html"
        ),
        name="password-reset-complete",
    ),
    path(org + "clients", views.client_list, name="client-list"),
    path(org + "clients/new", views.client_new, name="client-new"),
    path(org + "clients/claim-row", views.claim_row, name="claim-row"),
    path(client[:-1], views.client_detail, name="client-detail"),
    path(client + "edit", views.client_update, name="client-update"),
    path(client + "quota", views.client_quota, name="client-quota"),
    path(org + "usage", views.organization_usage, name="usage"),
    path(client + "delete", views.client_delete, name="client-delete"),
    path(client + "delete/confirm", views.client_delete_confirm, name="client-delete-confirm"),
    path(client + "secrets/new", views.secret_new, name="secret-new"),
    path(client + "secrets/<str:secret_id>/revoke", views.secret_revoke, name="secret-revoke"),
    path(
        client + "secrets/<str:secret_id>/revoke/confirm",
        views.secret_revoke_confirm,
        name="secret-revoke-confirm",
    ),
    path(client + "trust-policies/new", views.trust_policy_new, name="trust-policy-new"),
    path(
        client + "trust-policies/<str:policy_id>/delete",
        views.trust_policy_delete,
        name="trust-policy-delete",
    ),
    path(client + "trust-policies/test", views.trust_policy_test, name="trust-policy-test"),
    path(org + "audit", views.audit_log, name="audit-log"),
    path(org + "apis", views.catalog, name="catalog"),
    path(org + "webhooks", views.webhooks, name="webhooks"),
    path(org + "webhooks/<str:endpoint_id>", views.webhook_detail, name="webhook-detail"),
    path(org + "webhooks/<str:endpoint_id>/rotate", views.webhook_rotate, name="webhook-rotate"),
    path(org + "webhooks/<str:endpoint_id>/test", views.webhook_test, name="webhook-test"),
    path(org + "webhooks/<str:endpoint_id>/delete", views.webhook_delete, name="webhook-delete"),
    path(
        org + "webhooks/<str:endpoint_id>/deliveries/<str:delivery_id>/retry",
        views.webhook_retry,
        name="webhook-retry",
    ),
    path(org + "members", views.members, name="members"),
    path(org + "settings", views.organization_settings, name="organization-settings"),
    path(
        org + "settings/update",
        views.organization_settings_update,
        name="organization-settings-update",
    ),
    path(org + "members/invite", views.member_invite, name="member-invite"),
    path(org + "members/<int:membership_id>/role", views.member_role, name="member-role"),
    path(org + "members/<int:membership_id>/remove", views.member_remove, name="member-remove"),
    path(
        org + "invitations/<int:invitation_id>/cancel",
        views.invitation_cancel,
        name="invitation-cancel",
    ),
    path(
        org + "invitations/<int:invitation_id>/resend",
        views.invitation_resend,
        name="invitation-resend",
    ),
    path("invitations/<str:token>", views.invitation, name="invitation"),
    path("invitations/<str:token>/accept", views.invitation_accept, name="invitation-accept"),
    path("invitations/<str:token>/register", views.invitation_register, name="invitation-register"),
]
