# The counters that only oauth writes move here from clients, and ClientKey moves to clients.
# State only: every table keeps its name and its rows. Their content types follow them, so
# staff permissions and admin history stay attached.

from django.conf import settings
from django.db import migrations, models

MOVED = [
    ("oauth", "clients", "clientkey"),
    ("clients", "oauth", "tokenstat"),
    ("clients", "oauth", "ratelimitcounter"),
]


def move_content_types(apps, schema_editor, moves=MOVED):
    content_type = apps.get_model("contenttypes", "ContentType")
    for old_label, new_label, model in moves:
        old = content_type.objects.filter(app_label=old_label, model=model).first()
        if old is None:
            continue
        new = content_type.objects.filter(app_label=new_label, model=model).first()
        if new is None:
            old.app_label = new_label
            old.save(update_fields=["app_label"])
        else:
            # The apps were migrated one at a time (`migrate clients`, then `migrate`), and
            # post_migrate made the new content type in between: fold the old one into it.
            merge_content_type(apps, old, new)


def merge_content_type(apps, old, new):
    """Move the permissions (with their users and groups) and the admin history of ``old`` to
    ``new``, then delete ``old``."""
    permission = apps.get_model("auth", "Permission")
    links = [
        (apps.get_model(settings.AUTH_USER_MODEL).user_permissions.through, "user_id"),
        (apps.get_model("auth", "Group").permissions.through, "group_id"),
    ]
    for perm in permission.objects.filter(content_type=old):
        twin = permission.objects.filter(content_type=new, codename=perm.codename).first()
        if twin is None:
            perm.content_type = new
            perm.save(update_fields=["content_type"])
            continue
        for through, holder in links:
            for holder_id in through.objects.filter(permission=perm).values_list(holder, flat=True):
                through.objects.get_or_create(**{holder: holder_id, "permission": twin})
        perm.delete()
    apps.get_model("admin", "LogEntry").objects.filter(content_type=old).update(content_type=new)
    old.delete()


def move_back(apps, schema_editor):
    move_content_types(apps, schema_editor, [(new, old, model) for old, new, model in MOVED])


class Migration(migrations.Migration):
    dependencies = [
        ("oauth", "0002_beyond"),
        ("clients", "0005_clientkey_moves_in"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ClientKey"),
                migrations.CreateModel(
                    name="TokenStat",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("hour", models.DateTimeField(unique=True)),
                        ("issued", models.PositiveBigIntegerField(default=0)),
                        ("failed", models.PositiveBigIntegerField(default=0)),
                    ],
                    options={"verbose_name": "token statistic", "ordering": ["-hour"], "db_table": "clients_tokenstat"},
                ),
                migrations.CreateModel(
                    name="RateLimitCounter",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key", models.CharField(max_length=128, unique=True)),
                        ("window_start", models.BigIntegerField()),
                        ("count", models.PositiveIntegerField(default=0)),
                        ("expires", models.BigIntegerField(db_index=True)),
                    ],
                    options={"verbose_name": "rate-limit counter", "db_table": "clients_ratelimitcounter"},
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_back),
    ]
