"""ModelVersion.sha256: the hex SHA-256 of each row's bytes, computed here for the rows that
exist (recognizer.store records it on publish)."""

import hashlib

from django.db import migrations, models


def sha256_fill(apps, schema_editor) -> None:
    """Record each existing row's SHA-256, computed from its bytes, one row at a time (each holds ~1.1 MB)."""
    ModelVersion = apps.get_model("recognizer", "ModelVersion")
    for pk in ModelVersion.objects.values_list("pk", flat=True):
        data = ModelVersion.objects.filter(pk=pk).values_list("data", flat=True).get()
        ModelVersion.objects.filter(pk=pk).update(sha256=hashlib.sha256(bytes(data)).hexdigest())


class Migration(migrations.Migration):
    dependencies = [
        ("recognizer", "0001_model_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="sha256",
            field=models.CharField(default="", help_text="hex SHA-256 of data: a local copy is served only if it matches", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(sha256_fill, migrations.RunPython.noop),
    ]
