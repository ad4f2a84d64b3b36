"""Accounts and invitations keep their e-mail address in lower case (``email_canonical``).

Before, sign-up lowered only the domain, so ``Mixed.Case@example.com`` could log in only with
that capitalisation. Each account whose name is an e-mail address is moved to lower case, and
so is its e-mail field; invitations too. Two accounts whose addresses differ only by case are
two people's (or one person's two) accounts with their own memberships: they are not merged
silently but left as they are and reported, for staff to settle (log-in then needs the exact
capitalisation for those accounts only).
"""

import sys
from collections import defaultdict

from django.conf import settings
from django.db import migrations


def case_clashes(users) -> dict[str, list]:
    """Accounts named by an e-mail address, grouped by their lower-case form: more than one
    account in a group is a clash."""
    groups = defaultdict(list)
    for user in users:
        if "@" in user.username:
            groups[user.username.strip().lower()].append(user)
    return groups


def lower_case_emails(apps, schema_editor, out=None) -> list[str]:
    """Move every account and invitation to lower case; returns (and writes) the clashes."""
    out = out or sys.stdout
    User = apps.get_model(settings.AUTH_USER_MODEL)
    Invitation = apps.get_model("clients", "Invitation")
    report = []
    for lowered, users in case_clashes(User.objects.order_by("pk")).items():
        if len(users) > 1:
            names = ", ".join(f"{u.username} (id {u.pk})" for u in users)
            report.append(f"e-mail case clash, accounts left unchanged: {names}")
            continue
        (user,) = users
        email = (user.email or "").strip().lower()
        if user.username != lowered or user.email != email:
            User.objects.filter(pk=user.pk).update(username=lowered, email=email)
    for invitation in Invitation.objects.all():
        lowered = invitation.email.strip().lower()
        if invitation.email != lowered:
            Invitation.objects.filter(pk=invitation.pk).update(email=lowered)
    for line in report:
        out.write(f"\n  {line}")
    return report


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0007_form_claims"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(lower_case_emails, migrations.RunPython.noop)]
