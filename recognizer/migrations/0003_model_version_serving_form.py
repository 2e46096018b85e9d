"""ModelVersion.serving_form and serving_sha256: what web processes serve (ONNX graphs, no torch),
built once when a model is published. Rows that exist get theirs from the training worker or
`manage.py build_serving_forms` (it needs torch, which a migration on a web machine may lack)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("recognizer", "0002_model_version_sha256"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="serving_form",
            field=models.BinaryField(
                blank=True, null=True,
                help_text="what web processes serve: ONNX graphs, float32 and 8-bit (recognizer.servingform); null until built",
            ),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="serving_sha256",
            field=models.CharField(blank=True, default="", help_text="hex SHA-256 of serving_form", max_length=64),
        ),
    ]
