"""The staff console, as Django's admin autodiscovery finds it: one module per subject.

Importing them registers their model admins; the shared base is ``portal.console.base``.
"""

from portal.console import (  # noqa: F401
    audit,
    catalog,
    clients,
    federation,
    keys,
    management_clients,
    memberships,
    organizations,
    secrets,
    stats,
    users,
    webhooks,
)
