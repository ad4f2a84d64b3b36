"""An existing database migrates in place: the moves of ClientKey (oauth -> clients) and of
TokenStat and RateLimitCounter (clients -> oauth) keep every table, row and value, and their
content types follow them, so staff permissions and admin history stay attached.

The database is taken back to the schema of before the moves (``clients.0004_ratelimit``,
``oauth.0002_beyond``), filled through the historical models of that state, and migrated
forward; then the current models must find every row. After each migration the
``post_migrate`` signal is sent as ``manage.py migrate`` does, so a content type the moves fail
to carry over would come back as a duplicate. Each test ends at the latest migration again.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from clients.models import (
    ApiClient,
    ApiResource,
    ApiScope,
    AuditEvent,
    ClientKey,
    ClientSecret,
    Invitation,
    ManagementClient,
    Membership,
    Organization,
)
from oauth.models import RateLimitCounter, RevokedToken, SigningKey, TokenStat, UsedAssertion

OURS = ("clients", "oauth")
OLD_LEAVES = [("clients", "0004_ratelimit"), ("oauth", "0002_beyond")]
# model name -> (app label before the moves, app label after)
MOVED = {
    "clientkey": ("oauth", "clients"),
    "tokenstat": ("clients", "oauth"),
    "ratelimitcounter": ("clients", "oauth"),
}
CURRENT = {"clientkey": ClientKey, "tokenstat": TokenStat, "ratelimitcounter": RateLimitCounter}
# (app label, model name) in the old state -> the current model that must hold the same rows
OLD_TO_CURRENT = {
    ("clients", "Organization"): Organization,
    ("clients", "ApiResource"): ApiResource,
    ("clients", "ApiScope"): ApiScope,
    ("clients", "ApiClient"): ApiClient,
    ("clients", "ClientSecret"): ClientSecret,
    ("clients", "Membership"): Membership,
    ("clients", "Invitation"): Invitation,
    ("clients", "AuditEvent"): AuditEvent,
    ("clients", "TokenStat"): TokenStat,
    ("clients", "RateLimitCounter"): RateLimitCounter,
    ("oauth", "ClientKey"): ClientKey,
    ("oauth", "SigningKey"): SigningKey,
    ("oauth", "RevokedToken"): RevokedToken,
    ("oauth", "UsedAssertion"): UsedAssertion,
    tuple(settings.AUTH_USER_MODEL.split(".")): get_user_model(),
    ("admin", "LogEntry"): LogEntry,
}

# Columns added to our tables since the old state: table -> {column: the value old rows get}.
QUOTA_COLUMNS = {
    "token_quota_mode": "enforce",
    "token_quota_per_day": None,
    "token_quota_per_hour": None,
}
ADDED_COLUMNS = {
    "clients_apiclient": {"dpop_bound_access_tokens": False, **QUOTA_COLUMNS},
    "clients_clientsecret": {
        "leak_source": "",
        "leak_time": None,
        "leak_url": "",
        "lookup_hmac": None,
    },
    "clients_organization": {
        "on_leak": "revoke",
        "secret_max_lifetime_days": None,
        **QUOTA_COLUMNS,
    },
}

T0 = dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=dt.UTC)
ORG = "org_10000000000000001"
OTHER_ORG = "org_10000000000000002"
CLIENT = "m2morg_10000000000000003"
MGMT = "skc_10000000000000004"
SCOPES = ["deploy:applications", "read:deployments"]
AUDIENCE = ["deployment-api.acmecorp.com", "https://inventory.example.com"]
CLAIMS = [
    {"key": "github_repository", "value": "acmecorp/inventory-service"},
    {"key": "environment", "value": "production_üs"},
]
RSA_JWK = {"kty": "RSA", "kid": "k-rsa", "use": "sig", "alg": "RS256", "n": "sXch" * 8, "e": "AQAB"}
EC_JWK = {
    "kty": "EC",
    "kid": "k-ec",
    "use": "sig",
    "alg": "ES256",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
AUDIT_DETAILS = {"changed": ["scopes", "expiry"], "before": {"expiry": 3600}, "note": "ünïcode"}
PUBLIC_JWK = {"kty": "EC", "kid": "sig-1", "crv": "P-256", "x": "AAAA", "y": "BBBB"}
BIG = 2**40 + 7  # a PositiveBigIntegerField value beyond 32 bits


# --- Migrating ------------------------------------------------------------------------------------


def old_targets(executor: MigrationExecutor) -> list[tuple[str, str]]:
    """Our apps at today's main, everything else (the contrib apps) at its latest."""
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] not in OURS]
    return [*others, *OLD_LEAVES]


def latest_targets(executor: MigrationExecutor) -> list[tuple[str, str]]:
    return executor.loader.graph.leaf_nodes()


def migrate(which) -> Apps:
    """Migrate to ``which(executor)`` and return the apps of that state's historical models.

    A new executor (and so a new loader) each time, as Django's own migration tests rebuild it
    after migrating. Then ``post_migrate`` with that state's apps, as ``manage.py migrate``
    sends it: it creates any content type or permission still missing.
    """
    executor = MigrationExecutor(connection)
    targets = which(executor)
    executor.migrate(targets)
    executor = MigrationExecutor(connection)
    assert not executor.migration_plan(targets), "not fully migrated"
    state_apps = executor.loader.project_state(targets).apps
    emit_post_migrate_signal(0, False, connection.alias, apps=state_apps, plan=[])
    ContentType.objects.clear_cache()
    return state_apps


def applied_leaves() -> set[tuple[str, str]]:
    """The last applied migration of each of our apps."""
    applied = MigrationExecutor(connection).loader.applied_migrations
    return {(label, max(name for app, name in applied if app == label)) for label in OURS}


# --- Looking at the database ----------------------------------------------------------------------


def our_tables() -> list[str]:
    with connection.cursor() as cursor:
        names = connection.introspection.table_names(cursor)
    return sorted(name for name in names if name.startswith(("clients_", "oauth_")))


def staff_tables() -> list[str]:
    """The contrib tables that hold the staff's permissions and admin history."""
    user = get_user_model()
    return [
        user._meta.db_table,
        user.user_permissions.through._meta.db_table,
        user.groups.through._meta.db_table,
        Permission._meta.db_table,
        Group.permissions.through._meta.db_table,
        LogEntry._meta.db_table,
    ]


def raw_rows(table: str) -> list[tuple]:
    """Every row of ``table`` as the database returns it, in a stable order."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
        return sorted(cursor.fetchall(), key=repr)


def model_rows(model) -> list[dict]:
    """Every row of ``model`` as field values (JSON decoded, foreign keys as their ids)."""
    names = [field.attname for field in model._meta.concrete_fields]
    return list(model._default_manager.order_by("pk").values(*names))


def content_type_model(state_apps: Apps | None):
    return state_apps.get_model("contenttypes", "ContentType") if state_apps else ContentType


def content_types(state_apps: Apps | None = None) -> dict[str, list[tuple[int, str]]]:
    """model name -> [(id, app label)] of every content type of a moved model in our apps."""
    model = content_type_model(state_apps)
    found: dict[str, list[tuple[int, str]]] = {name: [] for name in MOVED}
    for ct in model.objects.filter(model__in=MOVED).order_by("pk"):
        if ct.app_label in OURS:
            found[ct.model].append((ct.pk, ct.app_label))
    return found


def assert_no_duplicate_content_types(state_apps: Apps | None = None) -> None:
    """Each moved model has one content type in our apps, not one per label."""
    for name, found in content_types(state_apps).items():
        assert len(found) == 1, f"{name}: {found}"


def user_perms(state_apps: Apps, username: str) -> set[str]:
    """The user's own and group permissions as ``app_label.codename``, read from the tables."""
    perm = state_apps.get_model("auth", "Permission")
    own = perm.objects.filter(user__username=username)
    via_group = perm.objects.filter(group__user__username=username)
    return {
        f"{label}.{codename}"
        for qs in (own, via_group)
        for label, codename in qs.values_list("content_type__app_label", "codename")
    }


# --- The database of today's main -----------------------------------------------------------------


def fill_old_database(old: Apps) -> None:
    """One or more rows in every table of ours, through the historical models of ``old``."""
    get = old.get_model
    api = get("clients", "ApiResource").objects.create(
        audience="https://inventory.example.com", name="Inventory", description="Stock levels"
    )
    get("clients", "ApiResource").objects.create(audience="billing", name="Billing")
    get("clients", "ApiScope").objects.create(api=api, name="read:items", description="Read")
    get("clients", "ApiScope").objects.create(api=api, name="write:items")

    org = get("clients", "Organization").objects.create(
        id=ORG, display_name="Acme Corp", external_id="acme", restrict_apis=True, create_time=T0
    )
    org.allowed_apis.add(api)
    get("clients", "Organization").objects.create(id=OTHER_ORG, display_name="Globex")

    user = get(settings.AUTH_USER_MODEL)
    owner = user.objects.create(username="owner", email="owner@acme.example", password="!")
    viewer = user.objects.create(username="viewer", email="viewer@acme.example", password="!")
    membership = get("clients", "Membership")
    membership.objects.create(user=owner, organization=org, role="owner", create_time=T0)
    membership.objects.create(user=viewer, organization=org, role="viewer")
    invitation = get("clients", "Invitation")
    invitation.objects.create(
        organization=org, email="new@acme.example", role="admin", invited_by=owner
    )
    invitation.objects.create(
        organization=org, email="viewer@acme.example", role="viewer", accepted_time=T0
    )

    client = get("clients", "ApiClient").objects.create(
        id=CLIENT,
        organization=org,
        name="GitHub Actions Deployment Service",
        description="Deploys to production",
        scopes=SCOPES,
        audience=AUDIENCE,
        custom_claims=CLAIMS,
        expiry=900,
        create_time=T0,
    )
    management = get("clients", "ManagementClient").objects.create(
        id=MGMT, organization=None, name="Terraform", scopes=[], audience=[], custom_claims=[]
    )
    secret = get("clients", "ClientSecret")
    secret.objects.create(
        id="sks_10000000000000005",
        client=client,
        secret_hash="$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        secret_suffix="wxyz",
        status="ACTIVE",
        last_used_time=T0,
        expire_time=T0 + dt.timedelta(days=90),
    )
    secret.objects.create(
        id="sks_10000000000000006",
        client=management,
        secret_hash="$argon2id$v=19$m=1024,t=1,p=1$b3RoZXJzYWx0$b3RoZXJoYXNo",
        secret_suffix="abcd",
        status="INACTIVE",
    )
    key = get("oauth", "ClientKey")
    key.objects.create(
        id="ckey_10000000000000007",
        client=client,
        kid="k-rsa",
        kty="RSA",
        alg="RS256",
        jwk=RSA_JWK,
        create_time=T0,
    )
    key.objects.create(
        id="ckey_10000000000000008", client=client, kid="k-ec", kty="EC", alg="ES256", jwk=EC_JWK
    )

    audit = get("clients", "AuditEvent")
    audit.objects.create(
        time=T0,
        actor_type="user",
        actor_id=str(owner.pk),
        actor_display="owner",
        organization_id=ORG,
        action="client.update",
        target_type="client",
        target_id=CLIENT,
        client_id=CLIENT,
        source_ip="203.0.113.7",
        details=AUDIT_DETAILS,
    )
    audit.objects.create(
        actor_type="system",
        action="key.rotate",
        target_type="signing_key",
        target_id="sig-1",
        source_ip="2001:db8::1",
    )

    get("clients", "TokenStat").objects.create(
        hour=T0.replace(minute=0, second=0, microsecond=0), issued=BIG, failed=3
    )
    get("clients", "TokenStat").objects.create(hour=dt.datetime(2026, 3, 4, 6, tzinfo=dt.UTC))
    get("clients", "RateLimitCounter").objects.create(
        key="token:ip:5f2b:1772600400", window_start=1772600400, count=7, expires=1772600460
    )
    get("clients", "RateLimitCounter").objects.create(
        key="token:client:m2morg:1772600400", window_start=1772600400, expires=1772600460
    )

    get("oauth", "SigningKey").objects.create(
        kid="sig-1",
        algorithm="ES256",
        private_key_encrypted="gAAAAABencrypted",
        public_jwk=PUBLIC_JWK,
        create_time=T0,
        retire_time=T0 + dt.timedelta(days=30),
        unpublish_time=T0 + dt.timedelta(days=31),
    )
    get("oauth", "SigningKey").objects.create(
        kid="sig-2", algorithm="RS256", private_key_encrypted="gAAAAABother", public_jwk={}
    )
    get("oauth", "RevokedToken").objects.create(
        jti="jti-revoked", client_id=CLIENT, expire_time=T0 + dt.timedelta(hours=1)
    )
    get("oauth", "UsedAssertion").objects.create(
        jti="jti-assertion", client_id=CLIENT, expire_time=T0 + dt.timedelta(minutes=5)
    )

    # Staff: a permission on each moved model, one more through a group, and admin history.
    content_type = get("contenttypes", "ContentType")
    permission = get("auth", "Permission")
    staff = user.objects.create(username="staff", is_staff=True, is_active=True, password="!")
    for name, (old_label, _new) in MOVED.items():
        ct = content_type.objects.get(app_label=old_label, model=name)
        staff.user_permissions.add(permission.objects.get(content_type=ct, codename=f"view_{name}"))
    group = get("auth", "Group").objects.create(name="counters")
    group.permissions.add(
        permission.objects.get(
            content_type__app_label="clients", codename="change_ratelimitcounter"
        )
    )
    staff.groups.add(group)
    log_entry = get("admin", "LogEntry")
    for name, (old_label, _new) in MOVED.items():
        row = get(old_label, name).objects.order_by("pk").first()
        log_entry.objects.create(
            user=staff,
            content_type=content_type.objects.get(app_label=old_label, model=name),
            object_id=str(row.pk),
            object_repr=f"{name} {row.pk}",
            action_flag=CHANGE,
            change_message='[{"changed": {"fields": ["count"]}}]',
            action_time=T0,
        )


# --- Tests ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_existing_database_migrates_in_place_without_losing_data():
    try:
        old = migrate(old_targets)
        assert applied_leaves() == set(OLD_LEAVES)
        # The database as today's main has it: old tables, old content type labels (what the
        # reverse of the move did is the other test's business, so this one does not rely on it).
        content_type = old.get_model("contenttypes", "ContentType")
        for name, (_old, new_label) in MOVED.items():
            content_type.objects.filter(app_label=new_label, model=name).delete()
        assert "oauth_clientkey" in our_tables()
        assert {"clients_tokenstat", "clients_ratelimitcounter"} <= set(our_tables())
        old_cts = content_types(old)
        for name, (old_label, _new) in MOVED.items():
            assert [label for _pk, label in old_cts[name]] == [old_label], name

        fill_old_database(old)

        tables = our_tables()
        for table in tables:  # the fill above covers every table of ours
            assert raw_rows(table), f"no row in {table}"
        before_raw = {table: raw_rows(table) for table in (*tables, *staff_tables())}
        before_models = {key: model_rows(old.get_model(*key)) for key in OLD_TO_CURRENT}
        before_perm_ids = set(
            old.get_model("auth", "Permission")
            .objects.filter(content_type__model__in=MOVED)
            .values_list("pk", flat=True)
        )
        content_type_count = content_type.objects.count()

        migrate(latest_targets)

        # Every table is still there under its name, with the very same rows; the tables added
        # since (the outbox) are empty.
        assert set(tables) <= set(our_tables())
        assert all(not raw_rows(table) for table in set(our_tables()) - set(tables))
        for table in tables:
            after = raw_rows(table)
            added = ADDED_COLUMNS.get(table, {})
            # Columns added since come last: the old ones keep their values.
            assert [row[: len(row) - len(added)] for row in after] == before_raw[table], table
        # The current models read them all, field by field; the added fields hold their defaults.
        for key, model in OLD_TO_CURRENT.items():
            added = ADDED_COLUMNS.get(model._meta.db_table, {})
            rows = model_rows(model)
            assert all(row[name] == value for row in rows for name, value in added.items())
            old_fields = [{k: v for k, v in row.items() if k not in added} for row in rows]
            assert old_fields == before_models[key], model._meta.label
        check_values_with_current_models()

        # The content types moved (the same rows, no new ones) ...
        assert_no_duplicate_content_types()
        assert ContentType.objects.count() == content_type_count
        after_cts = content_types()
        for name, (_old, new_label) in MOVED.items():
            assert after_cts[name] == [(old_cts[name][0][0], new_label)], name
            assert ContentType.objects.get_for_model(CURRENT[name]).pk == old_cts[name][0][0]
        assert (
            set(
                Permission.objects.filter(content_type__model__in=MOVED).values_list(
                    "pk", flat=True
                )
            )
            == before_perm_ids
        )
        # The staff's permissions, groups and admin history: the very same rows as well.
        for table in staff_tables():
            assert raw_rows(table) == before_raw[table], table

        # ... so the staff user keeps the permissions, under the new labels ...
        staff = get_user_model().objects.get(username="staff")
        for perm in (
            "clients.view_clientkey",
            "oauth.view_tokenstat",
            "oauth.view_ratelimitcounter",
        ):
            assert staff.has_perm(perm), perm
        assert staff.has_perm("oauth.change_ratelimitcounter")  # through the group
        for perm in (
            "oauth.view_clientkey",
            "clients.view_tokenstat",
            "clients.view_ratelimitcounter",
        ):
            assert not staff.has_perm(perm), perm
        assert not staff.has_perm("clients.change_ratelimitcounter")

        # ... and the admin history still points at the moved objects.
        entries = {e.content_type.model: e for e in LogEntry.objects.select_related("content_type")}
        assert set(entries) == set(MOVED)
        assert entries["clientkey"].content_type.model_class() is ClientKey
        assert entries["clientkey"].get_edited_object() == ClientKey.objects.get(
            pk="ckey_10000000000000007"
        )
        stat = TokenStat.objects.get(issued=BIG)
        assert entries["tokenstat"].content_type.model_class() is TokenStat
        assert entries["tokenstat"].get_edited_object() == stat
        assert entries["tokenstat"].get_admin_url() == f"/admin/oauth/tokenstat/{stat.pk}/change/"
        assert entries["ratelimitcounter"].get_edited_object().key == "token:ip:5f2b:1772600400"
        assert entries["ratelimitcounter"].user == staff
    finally:
        migrate(latest_targets)


def check_values_with_current_models() -> None:
    """Spot checks through the current models and their relations (beyond the row compare)."""
    assert Organization.objects.count() == 2
    org = Organization.objects.get(pk=ORG)
    assert (org.display_name, org.external_id, org.restrict_apis, org.create_time) == (
        "Acme Corp",
        "acme",
        True,
        T0,
    )
    assert list(org.allowed_apis.values_list("audience", flat=True)) == [
        "https://inventory.example.com"
    ]
    assert Organization.objects.get(pk=OTHER_ORG).external_id is None

    assert ApiResource.objects.count() == 2
    assert sorted(
        ApiScope.objects.filter(api__audience="https://inventory.example.com").values_list(
            "name", "description"
        )
    ) == [("read:items", "Read"), ("write:items", "")]

    assert sorted(
        Membership.objects.filter(organization=org).values_list("user__username", "role")
    ) == [("owner", "owner"), ("viewer", "viewer")]
    invitation = Invitation.objects.get(email="new@acme.example")
    assert (invitation.organization, invitation.role, invitation.invited_by.username) == (
        org,
        "admin",
        "owner",
    )
    assert Invitation.objects.get(email="viewer@acme.example").accepted_time == T0

    client = ApiClient.objects.get(pk=CLIENT)
    assert (client.scopes, client.audience, client.custom_claims) == (SCOPES, AUDIENCE, CLAIMS)
    assert (client.organization_id, client.expiry, client.create_time) == (ORG, 900, T0)
    management = ManagementClient.objects.get(pk=MGMT)
    assert management.is_management and management.name == "Terraform"
    assert ApiClient.objects.count() == 2

    assert ClientSecret.objects.count() == 2
    secret = client.secrets.get()
    assert (secret.id, secret.secret_suffix, secret.status, secret.last_used_time) == (
        "sks_10000000000000005",
        "wxyz",
        "ACTIVE",
        T0,
    )
    assert secret.expire_time == T0 + dt.timedelta(days=90)
    assert management.secrets.get().status == "INACTIVE"

    # ClientKey now in clients, reached from the client through the same foreign key.
    assert ClientKey._meta.app_label == "clients"
    assert ClientKey.objects.count() == 2
    assert [(k.id, k.kid, k.kty, k.alg, k.jwk) for k in client.keys.order_by("id")] == [
        ("ckey_10000000000000007", "k-rsa", "RSA", "RS256", RSA_JWK),
        ("ckey_10000000000000008", "k-ec", "EC", "ES256", EC_JWK),
    ]
    assert ClientKey.objects.get(pk="ckey_10000000000000007").client.organization == org

    assert AuditEvent.objects.count() == 2
    event = AuditEvent.objects.get(action="client.update")
    assert (event.time, event.source_ip, event.details, event.target_id) == (
        T0,
        "203.0.113.7",
        AUDIT_DETAILS,
        CLIENT,
    )
    assert AuditEvent.objects.get(action="key.rotate").source_ip == "2001:db8::1"

    # TokenStat and RateLimitCounter now in oauth.
    assert TokenStat._meta.app_label == "oauth" == RateLimitCounter._meta.app_label
    assert TokenStat.objects.count() == 2
    assert list(TokenStat.objects.values_list("hour", "issued", "failed")) == [
        (dt.datetime(2026, 3, 4, 6, tzinfo=dt.UTC), 0, 0),
        (dt.datetime(2026, 3, 4, 5, tzinfo=dt.UTC), BIG, 3),
    ]
    assert sorted(
        RateLimitCounter.objects.values_list("key", "window_start", "count", "expires")
    ) == [
        ("token:client:m2morg:1772600400", 1772600400, 0, 1772600460),
        ("token:ip:5f2b:1772600400", 1772600400, 7, 1772600460),
    ]

    assert SigningKey.objects.count() == 2
    signing_key = SigningKey.objects.get(pk="sig-1")
    assert (signing_key.public_jwk, signing_key.retire_time, signing_key.unpublish_time) == (
        PUBLIC_JWK,
        T0 + dt.timedelta(days=30),
        T0 + dt.timedelta(days=31),
    )
    assert SigningKey.objects.get(pk="sig-2").is_current
    revoked = RevokedToken.objects.get()
    assert (revoked.jti, revoked.client_id, revoked.expire_time) == (
        "jti-revoked",
        CLIENT,
        T0 + dt.timedelta(hours=1),
    )
    used = UsedAssertion.objects.get()
    assert (used.jti, used.client_id, used.expire_time) == (
        "jti-assertion",
        CLIENT,
        T0 + dt.timedelta(minutes=5),
    )


@pytest.mark.django_db(transaction=True)
def test_backwards_and_forwards_again_keeps_rows_and_content_types():
    try:
        migrate(latest_targets)
        # Data written by today's code: the moved models under their new apps.
        org = Organization.objects.create(id=ORG, display_name="Acme Corp")
        client = ApiClient.objects.create(id=CLIENT, organization=org, name="bot", scopes=SCOPES)
        ClientKey.objects.create(
            id="ckey_10000000000000007",
            client=client,
            kid="k-rsa",
            kty="RSA",
            alg="RS256",
            jwk=RSA_JWK,
        )
        stat = TokenStat.objects.create(
            hour=T0.replace(minute=0, second=0, microsecond=0), issued=5
        )
        counter = RateLimitCounter.objects.create(key="k", window_start=1, count=2, expires=61)
        staff = get_user_model().objects.create(username="staff", is_staff=True)
        for model in (ClientKey, TokenStat, RateLimitCounter):
            ct = ContentType.objects.get_for_model(model)
            staff.user_permissions.add(
                Permission.objects.get(content_type=ct, codename=f"view_{ct.model}")
            )
        entry = LogEntry.objects.create(
            user=staff,
            content_type=ContentType.objects.get_for_model(TokenStat),
            object_id=str(stat.pk),
            object_repr=str(stat),
            action_flag=CHANGE,
        )
        cts = content_types()
        assert_no_duplicate_content_types()
        content_type_count = ContentType.objects.count()

        old = migrate(old_targets)
        assert applied_leaves() == set(OLD_LEAVES)
        # Back to the old labels, on the same content type rows, without duplicates.
        assert_no_duplicate_content_types(old)
        assert content_type_model(old).objects.count() == content_type_count
        for name, (old_label, _new) in MOVED.items():
            assert content_types(old)[name] == [(cts[name][0][0], old_label)], name
        assert user_perms(old, "staff") == {
            "oauth.view_clientkey",
            "clients.view_tokenstat",
            "clients.view_ratelimitcounter",
        }
        assert old.get_model("oauth", "ClientKey").objects.get().jwk == RSA_JWK
        assert old.get_model("clients", "TokenStat").objects.get().issued == 5
        assert old.get_model("clients", "RateLimitCounter").objects.get().count == 2
        old_entry = old.get_model("admin", "LogEntry").objects.get(pk=entry.pk)
        assert (old_entry.content_type.app_label, old_entry.content_type.model) == (
            "clients",
            "tokenstat",
        )

        migrate(latest_targets)
        assert_no_duplicate_content_types()
        assert ContentType.objects.count() == content_type_count
        assert content_types() == cts
        assert applied_leaves() == {
            node
            for node in MigrationExecutor(connection).loader.graph.leaf_nodes()
            if node[0] in OURS
        }
        staff = get_user_model().objects.get(pk=staff.pk)
        assert staff.has_perm("clients.view_clientkey")
        assert staff.has_perm("oauth.view_tokenstat")
        assert staff.has_perm("oauth.view_ratelimitcounter")
        assert ClientKey.objects.get().client == client
        assert TokenStat.objects.get() == stat and TokenStat.objects.get().issued == 5
        assert RateLimitCounter.objects.get() == counter
        assert LogEntry.objects.get(pk=entry.pk).get_edited_object() == stat
    finally:
        migrate(latest_targets)


def test_migrations_describe_the_models():
    # The state after the moves must be the models' (db_table included): otherwise the next
    # makemigrations writes the difference, e.g. an AlterModelTable renaming a moved table.
    loader = MigrationLoader(None, ignore_no_migrations=True)
    changes = MigrationAutodetector(
        loader.project_state(), ProjectState.from_apps(global_apps)
    ).changes(graph=loader.graph)
    assert {
        label: [op.describe() for migration in migrations for op in migration.operations]
        for label, migrations in changes.items()
    } == {}


@pytest.mark.django_db(transaction=True)
def test_migrating_one_app_at_a_time_keeps_permissions_and_history():
    """``migrate clients`` first, then ``migrate``: post_migrate makes ``clients.clientkey`` in
    between, and the move folds the old content type into it instead of stranding the staff's
    permissions and the admin history on the old one."""
    try:
        old = migrate(old_targets)
        content_type = old.get_model("contenttypes", "ContentType")
        for name, (_old, new_label) in MOVED.items():
            content_type.objects.filter(app_label=new_label, model=name).delete()
        fill_old_database(old)

        def clients_only(executor: MigrationExecutor) -> list[tuple[str, str]]:
            return [
                ("clients", "0005_clientkey_moves_in") if node[0] == "clients" else node
                for node in old_targets(executor)
            ]

        between = migrate(clients_only)
        assert len(content_types(between)["clientkey"]) == 2  # the old and the new

        migrate(latest_targets)

        assert_no_duplicate_content_types()
        staff = get_user_model().objects.get(username="staff")
        assert staff.has_perm("clients.view_clientkey")
        assert not staff.has_perm("oauth.view_clientkey")
        entry = LogEntry.objects.get(content_type__model="clientkey")
        assert entry.content_type.app_label == "clients"
        assert entry.get_edited_object() == ClientKey.objects.get(pk="ckey_10000000000000007")
    finally:
        migrate(latest_targets)
