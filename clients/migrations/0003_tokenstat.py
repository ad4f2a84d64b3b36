from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("clients", "0002_portal"),
    ]

    operations = [
        migrations.CreateModel(
            name="TokenStat",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("hour", models.DateTimeField(unique=True)),
                ("issued", models.PositiveBigIntegerField(default=0)),
                ("failed", models.PositiveBigIntegerField(default=0)),
            ],
            options={
                "verbose_name": "token statistic",
                "ordering": ["-hour"],
            },
        ),
    ]
