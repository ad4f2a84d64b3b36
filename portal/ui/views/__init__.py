"""The self-service portal: customers manage their organization's API clients in a browser.

Views are small typed functions. Every state change is a POST that calls ``clients.services``;
the organization comes from ``member_view`` (404 for non-members, 403 for a read-only role).
With htmx, a view answers with a fragment of the same template (``template.html#partial``).

One module per subject; ``portal/ui/urls.py`` names every view through this package
(``views.client_list``), so a view can move between modules without touching the URLs.
"""

from portal.ui.views.accounts import (
    LoginView,
    PasswordResetView,
    home,
    invitation,
    invitation_accept,
    invitation_register,
    logout,
    signup,
    signup_confirm,
    signup_sent,
)
from portal.ui.views.audit import audit_log
from portal.ui.views.catalog import catalog
from portal.ui.views.clients import (
    claim_row,
    client_delete,
    client_delete_confirm,
    client_detail,
    client_list,
    client_new,
    client_update,
    secret_new,
    secret_revoke,
    secret_revoke_confirm,
)
from portal.ui.views.federation import trust_policy_delete, trust_policy_new, trust_policy_test
from portal.ui.views.members import (
    invitation_cancel,
    invitation_resend,
    member_invite,
    member_remove,
    member_role,
    members,
)
from portal.ui.views.organization import organization_settings, organization_settings_update
from portal.ui.views.usage import client_quota, organization_usage
from portal.ui.views.webhooks import (
    webhook_delete,
    webhook_detail,
    webhook_retry,
    webhook_rotate,
    webhook_test,
    webhooks,
)

__all__ = [
    "LoginView",
    "PasswordResetView",
    "audit_log",
    "catalog",
    "claim_row",
    "client_delete",
    "client_delete_confirm",
    "client_detail",
    "client_list",
    "client_new",
    "client_quota",
    "client_update",
    "home",
    "invitation",
    "invitation_accept",
    "invitation_cancel",
    "invitation_register",
    "invitation_resend",
    "logout",
    "member_invite",
    "member_remove",
    "member_role",
    "members",
    "organization_settings",
    "organization_settings_update",
    "organization_usage",
    "secret_new",
    "secret_revoke",
    "secret_revoke_confirm",
    "signup",
    "signup_confirm",
    "signup_sent",
    "trust_policy_delete",
    "trust_policy_new",
    "trust_policy_test",
    "webhook_delete",
    "webhook_detail",
    "webhook_retry",
    "webhook_rotate",
    "webhook_test",
    "webhooks",
]
