# The counters that only oauth writes move here from clients, and ClientKey moves to clients.
# State only: every table keeps its name and its rows. Their content types follow them, so
# staff permissions and admin history stay attached.

from django.db import migrations, models

MOVED = [("oauth", "clients", "clientkey"), ("clients", "oauth", "tokenstat"), ("clients", "oauth", "ratelimitcounter")]


def move_content_types(apps, schema_editor, moves=MOVED):
    content_type = apps.get_model("contenttypes", "ContentType")
    for old, new, model in moves:
        if not content_type.objects.filter(app_label=new, model=model).exists():
            content_type.objects.filter(app_label=old, model=model).update(app_label=new)


def move_back(apps, schema_editor):
    move_content_types(apps, schema_editor, [(new, old, model) for old, new, model in MOVED])


class Migration(migrations.Migration):
    dependencies = [
        ("oauth", "0002_beyond"),
        ("clients", "0005_clientkey_moves_in"),
        ("contenttypes", "0002_remove_content_type_name"),
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
