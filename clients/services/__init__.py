"""Every state change of organizations, clients and their credentials, with its audit event.

The portal, the management API and the admin all call these functions, so each
rule lives in one place. Functions are keyword-only and atomic; they raise
``django.core.exceptions.ValidationError`` for bad input and change nothing then.
The submodules split them by subject; callers import from here.
"""

from clients.services._common import AlreadySubmitted
from clients.services.audit import Actor, audit_record
from clients.services.catalog import (
    api_resource_create,
    api_resource_delete,
    api_resource_update,
    api_scope_add,
    api_scope_delete,
    api_scope_update,
    catalog_check,
    catalog_for,
    organization_restrict_apis,
    provider_grants,
)
from clients.services.clients import (
    CLIENT_UPDATABLE_FIELDS,
    client_create,
    client_delete,
    client_update,
    management_client_create,
)
from clients.services.keys import client_key_add, client_key_delete
from clients.services.leaks import LeakResult, secret_report_leak, secrets_report_leak
from clients.services.members import (
    account_signup,
    account_signup_confirm,
    invitation_accept,
    invitation_accept_with_signup,
    invitation_cancel,
    invitation_create,
    invitation_resend,
    member_add,
    member_remove,
    member_role_change,
    password_reset_request,
)
from clients.services.organizations import (
    organization_create,
    organization_delete,
    organization_update,
)
from clients.services.outbox import email_enqueue, enqueue
from clients.services.quotas import quota_alert
from clients.services.reminders import secret_reminders_send
from clients.services.secrets import (
    expire_time_from_seconds,
    secret_add,
    secret_delete,
    secret_set_status,
    secrets_revoke_all,
)
from clients.services.trust import (
    TRUST_POLICY_FIELDS,
    federated_token_record,
    trust_policy_create,
    trust_policy_delete,
    trust_policy_update,
)
from clients.services.webhooks import (
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_disable,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_test,
    webhook_endpoint_update,
)

__all__ = [
    "CLIENT_UPDATABLE_FIELDS",
    "TRUST_POLICY_FIELDS",
    "Actor",
    "AlreadySubmitted",
    "LeakResult",
    "account_signup",
    "account_signup_confirm",
    "api_resource_create",
    "api_resource_delete",
    "api_resource_update",
    "api_scope_add",
    "api_scope_delete",
    "api_scope_update",
    "audit_record",
    "catalog_check",
    "catalog_for",
    "client_create",
    "client_delete",
    "client_key_add",
    "client_key_delete",
    "client_update",
    "email_enqueue",
    "enqueue",
    "expire_time_from_seconds",
    "federated_token_record",
    "invitation_accept",
    "invitation_accept_with_signup",
    "invitation_cancel",
    "invitation_create",
    "invitation_resend",
    "management_client_create",
    "member_add",
    "member_remove",
    "member_role_change",
    "organization_create",
    "organization_delete",
    "organization_restrict_apis",
    "organization_update",
    "password_reset_request",
    "provider_grants",
    "quota_alert",
    "secret_add",
    "secret_delete",
    "secret_reminders_send",
    "secret_report_leak",
    "secret_set_status",
    "secrets_report_leak",
    "secrets_revoke_all",
    "trust_policy_create",
    "trust_policy_delete",
    "trust_policy_update",
    "webhook_delivery_retry",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_disable",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_test",
    "webhook_endpoint_update",
]
