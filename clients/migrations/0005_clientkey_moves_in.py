# Public keys join the client's other credentials; the token and rate-limit counters move to
# oauth, which writes them. State only: every table keeps its name and its rows.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import clients.models


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0004_ratelimit"),
        ("oauth", "0002_beyond"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ClientKey",
                    fields=[
                        ("id", models.CharField(default=clients.models.new_client_key_id, editable=False, max_length=32, primary_key=True, serialize=False)),
                        ("kid", models.CharField(editable=False, max_length=128)),
                        ("kty", models.CharField(editable=False, max_length=8)),
                        ("alg", models.CharField(editable=False, max_length=8)),
                        ("jwk", models.JSONField(editable=False)),
                        ("create_time", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ("client", models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="keys", to="clients.apiclient")),
                    ],
                    options={
                        "verbose_name": "client public key",
                        "db_table": "oauth_clientkey",
                        "ordering": ["create_time", "id"],
                        "constraints": [models.UniqueConstraint(fields=("client", "kid"), name="oauth_clientkey_unique_kid")],
                    },
                ),
                migrations.DeleteModel(name="TokenStat"),
                migrations.DeleteModel(name="RateLimitCounter"),
            ],
        ),
    ]
